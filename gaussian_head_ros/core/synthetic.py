"""Synthetic avatars with known structure, for tests and benchmarks (no photo, no model needed)."""

from __future__ import annotations

import numpy as np

from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC, PART_TORSO, GaussianAvatar, SourceCamera, rgb_to_sh_dc


def sphere_mesh(rows: int = 12, cols: int = 16, radius: float = 0.09) -> tuple[np.ndarray, np.ndarray]:
    """A front-facing spherical cap (the 'face' template): [V, 3] vertices, [F, 3] triangles.

    Faces point towards -z (the camera) and are counter-clockwise seen from outside."""
    theta = np.linspace(-0.9, 0.9, cols)  # azimuth around y
    phi = np.linspace(-0.8, 0.8, rows)  # elevation
    th, ph = np.meshgrid(theta, phi)
    v = np.stack([radius * np.sin(th) * np.cos(ph), radius * np.sin(ph), -radius * np.cos(th) * np.cos(ph)], -1)
    v = v.reshape(-1, 3).astype(np.float32)
    f = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            a, b, d, e = r * cols + c, r * cols + c + 1, (r + 1) * cols + c, (r + 1) * cols + c + 1
            f += [(a, d, b), (b, d, e)]
    return v, np.asarray(f, np.int32)


def synthetic_avatar(n: int = 60_000, seed: int = 0, sh_degree: int = 0, face_fraction: float = 0.5,
                     operator_id: str = "synthetic") -> GaussianAvatar:
    """An avatar-shaped cloud: a face cap bound to a template mesh plus a static head and torso."""
    rng = np.random.default_rng(seed)
    verts, faces = sphere_mesh()
    n_face = int(n * face_fraction)
    n_torso = n // 10
    n_static = n - n_face - n_torso
    # Dynamic part: on the template triangles, slightly off the surface.
    fid = rng.integers(0, len(faces), n_face).astype(np.int32)
    b = rng.dirichlet(np.ones(3), n_face).astype(np.float32)
    tri = verts[faces[fid]]  # [n_face, 3, 3]
    p_face = np.einsum("nk,nkc->nc", b, tri)
    nrm_face = p_face / np.linalg.norm(p_face, axis=1, keepdims=True)
    p_face = p_face + nrm_face * rng.normal(0, 0.001, (n_face, 1)).astype(np.float32)
    # Static head: an ellipsoid behind the face. Torso: a box below.
    d = rng.normal(size=(n_static, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    p_static = d * np.array([0.085, 0.11, 0.1]) + np.array([0, -0.01, 0.01])
    p_torso = rng.uniform([-0.18, 0.12, -0.05], [0.18, 0.3, 0.1], (n_torso, 3))
    means = np.concatenate([p_face, p_static, p_torso]).astype(np.float32)
    normals = np.concatenate([nrm_face, d, np.tile([0, 0, -1.0], (n_torso, 1))]).astype(np.float32)
    part = np.concatenate([np.full(n_face, PART_FACE), np.full(n_static, PART_STATIC), np.full(n_torso, PART_TORSO)])
    face_id = np.concatenate([fid, np.full(n - n_face, -1)]).astype(np.int32)
    bary = np.concatenate([b, np.zeros((n - n_face, 3), np.float32)])
    rgb = np.clip(0.5 + 0.3 * means / 0.1 + rng.normal(0, 0.05, (n, 3)), 0, 1)
    k = (sh_degree + 1) ** 2
    sh = np.zeros((n, k, 3), np.float32)
    sh[:, 0] = rgb_to_sh_dc(rgb)
    if k > 1:
        sh[:, 1:] = rng.normal(0, 0.05, (n, k - 1, 3))
    q = rng.normal(size=(n, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    viewmat = np.eye(4, dtype=np.float32)
    viewmat[2, 3] = 0.6
    return GaussianAvatar(
        means=means, normals=normals, sh=sh,
        logit_opacities=rng.normal(1.5, 1.0, n).astype(np.float32),
        log_scales=np.log(rng.uniform(0.001, 0.004, (n, 3))).astype(np.float32),
        quats=q, part=part.astype(np.uint8), face_id=face_id, bary=bary,
        template_vertices=verts, template_faces=faces,
        expression_names=["jawOpen"],
        expression_basis=np.concatenate([np.zeros((1, len(verts), 1)), (verts[None, :, 1:2] > 0.02) * 0.01,
                                         np.zeros((1, len(verts), 1))], axis=2).astype(np.float32),
        lighting_sh=rng.normal(0, 0.2, (9, 3)).astype(np.float32),
        source_camera=SourceCamera(np.array([700, 700, 256, 256], np.float32), viewmat, (512, 512)),
        operator_id=operator_id, reconstructor="synthetic",
    )
