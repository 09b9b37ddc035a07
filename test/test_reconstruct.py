"""One-shot reconstruction on real photos: the template topology recovered from the wheel's edge list
against MediaPipe's canonical mesh, every portrait -> a valid avatar that reproduces the photo at rest,
an open jaw shows a mouth interior, the two-face photo, refusals with reasons, the CLI."""

import glob
import io
import re
import zlib

import cv2
import numpy as np
import pytest
from conftest import SHARED, mesh_fit_result, shared

from gaussian_head_ros.core.reconstruct import (BAD_IMAGE, FACE_TOO_SMALL, HEAD_TURNED_TOO_FAR, NO_FACE,
                                                ReconstructionError, get_reconstructor)

PORTRAITS = sorted(p.split("/")[-1] for p in glob.glob(str(SHARED / "portraits" / "*")))
MESSAGE_LIMIT = 6_000_000  # a 60k avatar's message: 5.3-5.5 MB (7.46 MB when band 1 was on every row)


def _obj_faces(path):
    faces = []
    for line in open(path):
        if line.startswith("f "):
            faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    return np.asarray(faces)


def _obj_vertices(path):
    return np.asarray([[float(v) for v in line.split()[1:4]] for line in open(path) if line.startswith("v ")])


def _canon(t):
    i = int(np.argmin(t))
    return tuple(int(v) for v in np.roll(t, -i))


# ---------------------------------------------------------------------------------------------------
# template topology


def test_template_triangles_match_the_canonical_mesh():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    from gaussian_head_ros.core.reconstruct.template import boundary_loops, hole_loops, template_faces

    obj = shared("canonical_face", "canonical_face_model.obj")
    ref = _obj_faces(obj)  # [898, 3], the eyes and the mouth closed
    ours = np.asarray(template_faces())
    assert ours.shape == (852, 3) and len(ref) == 898
    # A manifold surface: every edge in one or two triangles; the boundary is the oval + 2 eyes + the mouth.
    loops = boundary_loops(ours)
    assert sorted(len(lp) for lp in loops) == [16, 16, 20, 36]
    holes = hole_loops()
    lips = {v for e in fmc.FACEMESH_LIPS for v in e}
    assert set(holes["mouth"].tolist()) <= lips and 13 in holes["mouth"] and 14 in holes["mouth"]
    assert {v for e in fmc.FACEMESH_LEFT_EYE for v in e} == set(holes["left_eye"].tolist())
    ref_set = {_canon(t) for t in ref}
    same = {_canon(t) for t in ours} & ref_set  # identical triangles, identical orientation
    others = [tuple(int(x) for x in t) for t in ours if _canon(t) not in ref_set]
    # The others pair up into quads whose other diagonal gives two .obj triangles (same orientation as ours).
    by_edge = {}
    for t in others:
        for u, v in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            by_edge.setdefault(frozenset((u, v)), []).append((t, u, v))
    paired, flip_ref = set(), set()
    for pair in by_edge.values():
        if len(pair) != 2:
            continue
        (t1, u, v), (t2, _, _) = pair
        a, b = (set(t1) - {u, v}).pop(), (set(t2) - {u, v}).pop()
        if _canon((a, u, b)) in ref_set and _canon((b, v, a)) in ref_set:
            paired |= {_canon(t1), _canon(t2)}
            flip_ref |= {_canon((a, u, b)), _canon((b, v, a))}
    assert paired == {_canon(t) for t in others}, "triangles that are neither .obj triangles nor diagonal flips"
    assert len(same) > 400 and len(same) + len(others) == 852
    # What the .obj has beyond that: exactly the patches closing the eyes (14 + 14) and the mouth (18).
    rest = ref_set - same - flip_ref
    hole_sets = [set(h.tolist()) for h in holes.values()]
    assert len(rest) == 46 and all(any(set(t) <= h for h in hole_sets) for t in rest)
    # Orientation: counter-clockwise seen from outside; in the head frame (y down, z into the head) the
    # normals of a frontal face point at the camera (-z). The .obj is y-up, z-towards-the-viewer.
    v = _obj_vertices(obj) * np.array([1.0, -1.0, -1.0])
    n = np.cross(v[ours[:, 1]] - v[ours[:, 0]], v[ours[:, 2]] - v[ours[:, 0]])
    assert np.mean(n[:, 2] < 0) > 0.95


def test_mirror_map_is_an_involution_on_the_canonical_mesh():
    from gaussian_head_ros.core.reconstruct.template import mirror_vertices

    v = _obj_vertices(shared("canonical_face", "canonical_face_model.obj"))
    m = mirror_vertices(v)
    assert np.array_equal(m[m], np.arange(len(v)))
    assert (m[33], m[263], m[1], m[61]) == (263, 33, 1, 291)


# ---------------------------------------------------------------------------------------------------
# the silhouette wall


def test_the_wall_keeps_rim_colours_at_the_silhouette_only():
    """Each wall column repeats one rim pixel's colour along its depth; carried centimetres back, those
    colours show as long streaks over the cheek, ear and jaw of a turned head (issue 11). On a 10 cm deep
    wall behind a disc-shaped person with striped rim colours: the rim's colours within wall_rim_m of the
    front, only the (streak-free) side colours from 2 x wall_rim_m back."""
    from gaussian_head_ros.core.reconstruct.completion import Scene, back_and_wall
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitConfig
    from gaussian_head_ros.core.reconstruct.surfaces import pixel_rays

    cfg = MeshFitConfig()
    size, f, z_front, z_back = 128, 300.0, 0.5, 0.6
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ii, jj = np.mgrid[0:size, 0:size]
    person = (ii - size / 2) ** 2 + (jj - size / 2) ** 2 < 40 ** 2
    rim = np.zeros((size, size, 3), np.float32)
    rim[..., 0] = (jj % 2 == 0)  # red and white stripes: what a rim of hair strands, ear and collar looks like
    rim[..., 1:] = (jj % 2 == 1)[..., None]
    rim[..., 0] = np.maximum(rim[..., 0], rim[..., 1])
    side = np.full((size, size, 3), 0.5, np.float32)
    scene = Scene(K, np.eye(3), np.zeros(3), rim, person, np.where(person, z_front, np.inf), pixel_rays(K, size), 1.0)
    front, back = np.full((size, size), z_front, np.float32), np.full((size, size), z_back, np.float32)
    batch = back_and_wall(scene, front, back, side, side, rim, np.zeros_like(person), cfg.back_spacing_m,
                          cfg.torso_back_spacing_m, cfg.wall_step_m, cfg.wall_rim_m)
    wall = np.abs(batch.normals[:, 2]) < 1e-6  # wall discs face outwards, across the line of sight
    behind = batch.means[wall, 2] - z_front
    colours = batch.colors[wall]
    assert wall.sum() > 200 and behind.max() > 0.09
    deep = behind > 2 * cfg.wall_rim_m
    assert np.abs(colours[deep] - 0.5).max() < 1e-6, "rim colours carried deep into the wall (streaks)"
    shallow = behind < cfg.wall_rim_m
    assert shallow.any() and np.abs(colours[shallow] - 0.5).min(axis=1).max() > 0.4  # the rim at the front


def _turned_camera(yaw_deg: float, distance_m: float = 0.6):
    """(R, t): a camera distance_m from the head origin, turned yaw_deg about the head's y axis (its centre on the
    +x side of the mid-sagittal plane for a positive yaw: that half is the near one)."""
    a = np.radians(yaw_deg)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    return R, np.array([0.0, 0.0, distance_m])


@pytest.mark.parametrize("yaw", [0.0, 20.0])
def test_the_far_half_is_as_deep_as_the_near_halfs_mirror_image(yaw):
    """completion.mirrored_back on a flat back (camera depth 0.7 m behind every pixel of a disc-shaped person) seen from
    a camera turned by `yaw` about the head: a near-half back point x from the mid-sagittal plane, mirrored, lies
    2 sin(yaw) x deeper than the flat back. Frontal (0 deg): no gain anywhere; turned: the far half gains that much
    (within 10 %: the pixel grid), the near half and the background nothing."""
    from gaussian_head_ros.core.reconstruct.completion import mirrored_back
    from gaussian_head_ros.core.reconstruct.surfaces import pixel_rays

    size, f = 128, 300.0
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ii, jj = np.mgrid[0:size, 0:size]
    person = (ii - size / 2) ** 2 + (jj - size / 2) ** 2 < 50 ** 2
    R, t = _turned_camera(yaw)
    rays = pixel_rays(K, size)
    back = np.full((size, size), 0.7, np.float32)
    gain = mirrored_back(back, person, rays, R, t, K, np.ones((size, size)), blur_px=0.0)
    assert np.all(gain[~person] == 0)
    pts = ((back[..., None] * rays) - t) @ R  # head frame
    if yaw == 0:
        assert np.abs(gain).max() < 2e-3, f"a frontal photo's far half gained {1000 * gain.max():.1f} mm"
        return
    near = person & (pts[..., 0] > 0.005)
    far = person & (pts[..., 0] < -0.015) & (pts[..., 0] > -0.06)  # where the near half's mirror reaches (7 cm)
    assert np.all(gain[near] == 0), "the near half is the photo's own"
    # the mirror point landing on a far pixel's ray lies g = 2 sin(yaw) |its x| behind the back there, its x that of the
    # back point plus g times the ray's head-frame x per metre of camera depth (d_x, outward on the far half)
    s, d_x = 2 * np.sin(np.radians(yaw)), (rays @ R)[..., 0]
    expected = s * np.abs(pts[..., 0]) / (1 - s * np.abs(d_x))
    inner = far & (cv2.erode(person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    ratio = np.median(gain[inner] / expected[inner])
    assert 0.9 < ratio < 1.1, f"the far half gained {ratio:.2f} x its mirror image's depth"


def test_the_far_halfs_hidden_side_takes_the_near_halfs_colours_at_its_own_light():
    """completion.mirrored_colours: a hidden Gaussian on the far half whose mirror image lies just behind the surface
    the photo shows takes the photo's colour there (its chromaticity), at its own luminance; one whose mirror lies
    deeper than reach_m behind it, one on the near half and one the photo shows keep theirs."""
    from gaussian_head_ros.core.reconstruct.completion import Scene, mirrored_colours
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.surfaces import pixel_rays

    size, f = 128, 300.0
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    R, t = _turned_camera(20.0)
    person = np.ones((size, size), bool)
    photo = np.broadcast_to(np.array([0.8, 0.3, 0.2], np.float32), (size, size, 3)).copy()
    scene = Scene(K, R, t, photo, person, np.full((size, size), 0.57, np.float32), pixel_rays(K, size), 1.0)
    means = np.array([[-0.05, 0, 0.0],  # far half, hidden; its mirror 1.3 cm behind the photo's surface
                      [-0.05, 0, 0.1],  # far half, its mirror 11 cm behind it
                      [0.05, 0, 0.05],  # near half
                      [-0.05, 0, -0.05]])  # far half, on the surface the photo shows
    grey = np.full((4, 3), 0.3, np.float32)
    out = mirrored_colours(scene, means, grey, person, reach_m=0.03)
    chroma = out[0] / out[0].sum()
    assert np.abs(chroma - photo[0, 0] / photo[0, 0].sum()).max() < 1e-3, f"{out[0]}: not the near half's colour"
    assert abs(float(out[0] @ LUMA) - 0.3) < 1e-3, f"{out[0]}: not at its own light"
    assert np.allclose(out[1:], 0.3), f"{out[1:]}: changed where the mirror is not the photo's"


def test_the_side_behind_the_silhouette_turns_to_the_far_colour_and_darkens():
    """One colour per outline pixel all through a 10 cm deep side showed in a turned view as a flat cut-out sheet
    beside the cheek (issue 11). With a SideLook, a wall column keeps the rim's colour at the front, the near side
    colour just behind it, then turns to the far colour (the hair behind the ear) and darkens towards its back;
    the texture adds the detail from further inside the silhouette the deeper the point."""
    from gaussian_head_ros.core.reconstruct.completion import Scene, SideLook, back_and_wall
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitConfig
    from gaussian_head_ros.core.reconstruct.surfaces import pixel_rays

    cfg = MeshFitConfig()
    size, f, z_front, z_back = 128, 300.0, 0.5, 0.6
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ii, jj = np.mgrid[0:size, 0:size]
    person = (ii - size / 2) ** 2 + (jj - size / 2) ** 2 < 40 ** 2
    rim = np.full((size, size, 3), 0.2, np.float32)
    near, far = np.full((size, size, 3), 0.8, np.float32), np.zeros((size, size, 3), np.float32)
    far[..., 2] = 0.6
    scene = Scene(K, np.eye(3), np.zeros(3), rim, person, np.where(person, z_front, np.inf), pixel_rays(K, size), 1.0)
    front, back = np.full((size, size), z_front, np.float32), np.full((size, size), z_back, np.float32)
    look = SideLook(far=far, far_from_m=0.012, far_ramp_m=0.02, shade=0.4, shade_depth_m=0.05)

    def wall_of(side_look, back=back):
        batch = back_and_wall(scene, front, back, near, near, rim, np.zeros_like(person), cfg.back_spacing_m,
                              cfg.torso_back_spacing_m, cfg.wall_step_m, cfg.wall_rim_m, side_look=side_look)
        wall = np.abs(batch.normals[:, 2]) < 1e-6
        return batch.means[wall, 2] - z_front, batch.colors[wall], batch.colors[~wall]

    behind, col, back_col = wall_of(look)
    front_rim = behind < cfg.wall_rim_m
    assert np.allclose(col[front_rim], 0.2, atol=0.03)  # the rim, as without a SideLook
    just = (behind > 2 * cfg.wall_rim_m) & (behind < 0.012)
    assert just.any() and np.all(col[just, 0] > 0.6)  # the near side colour, a little darker
    deep = behind > 0.05
    assert deep.any() and np.allclose(col[deep], [0, 0, 0.6 * (1 - 0.4)], atol=0.01)  # far colour, shaded
    order = np.argsort(behind[behind > 2 * cfg.wall_rim_m])
    assert np.all(np.diff(col[behind > 2 * cfg.wall_rim_m][order].sum(1)) <= 1e-5)  # darker all the way back
    assert np.allclose(back_col, 0.8, atol=1e-6)  # a back facing away from the camera: as it was (the front view
    # sees it through the photo layer's gaps); where it turns sideways, as dark as the side it meets: no step
    r = np.sqrt((ii - size / 2 + 0.5) ** 2 + (jj - size / 2 + 0.5) ** 2)
    dome = (z_front + 0.1 * np.sqrt(np.clip(1 - (r / 40) ** 2, 0, 1))).astype(np.float32)
    batch = back_and_wall(scene, front, dome, near, near, rim, np.zeros_like(person), 0.002, 0.002,
                          cfg.wall_step_m, cfg.wall_rim_m, side_look=look)
    grid = np.abs(batch.normals[:, 2]) > 1e-6
    pix = np.hypot(*(batch.means[grid, :2] / batch.means[grid, 2:] * f).T)  # px from the image centre
    luma = batch.colors[grid].mean(1)
    side = (pix > 30) & (pix < 37)
    assert side.any() and luma[side].max() < 0.8 * (1 - 0.12) and luma[pix < 10].min() > 0.8 * (1 - 0.05)
    # unchanged without a SideLook: the side colours all through
    behind0, col0, _ = wall_of(None)
    assert np.allclose(col0[behind0 > 2 * cfg.wall_rim_m], 0.8)
    # the texture: the deeper a point, the further inside the silhouette its detail comes from
    tex = np.zeros((size, size, 3), np.float32)
    tex[(ii - size / 2) ** 2 + (jj - size / 2) ** 2 < 20 ** 2] = 0.1  # detail only 20+ px inside the outline
    reach = 20 / 0.05  # px per metre: 20 px at 5 cm
    behind_t, col_t, _ = wall_of(SideLook(texture=tex, texture_px_per_m=reach))
    lifted = np.abs(col_t[:, 0] - 0.8 - 0.1) < 1e-3
    assert lifted.any() and behind_t[lifted].min() > 0.045 and not lifted[behind_t < 0.035].any()


def test_the_sides_detail_goes_on_all_through_its_depth():
    """The side's texture came from further inside the silhouette the deeper the point (SideLook.texture_px_per_m):
    from 2 cm back it reached past the head's hair band into the face, where there is none, and the far side was one
    flat colour. Turned 20-35 deg every avatar showed a smooth shell round its hair (issue 11). With texture_fold_px
    the reach goes back and forth within the band (a triangle wave), so every depth carries the band's detail."""
    from gaussian_head_ros.core.reconstruct.completion import Scene, SideLook, back_and_wall, fold
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitConfig
    from gaussian_head_ros.core.reconstruct.surfaces import pixel_rays

    assert np.allclose(fold(np.array([0.0, 4, 10, 15, 20, 25, 30, 35]), (5, 15)), [0, 4, 10, 15, 10, 5, 10, 15])
    assert np.allclose(fold(np.arange(5.0), None), np.arange(5.0))
    cfg = MeshFitConfig()
    size, f, z_front, z_back = 128, 300.0, 0.5, 0.6
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ii, jj = np.mgrid[0:size, 0:size]
    r = np.hypot(ii - size / 2 + 0.5, jj - size / 2 + 0.5)
    person = r < 40
    near = np.full((size, size, 3), 0.5, np.float32)
    scene = Scene(K, np.eye(3), np.zeros(3), near, person, np.where(person, z_front, np.inf), pixel_rays(K, size), 1.0)
    front, back = np.full((size, size), z_front, np.float32), np.full((size, size), z_back, np.float32)
    tex = np.zeros((size, size, 3), np.float32)
    band = (r > 24) & (r < 36)  # detail 4..16 px inside the outline only (the hair band; the face inside has none)
    tex[band] = np.random.default_rng(0).uniform(-0.1, 0.1, (int(band.sum()), 1))

    def detailed_deep_wall(look):  # the share of the wall's points 4 cm or more behind the front carrying detail
        batch = back_and_wall(scene, front, back, near, near, near, np.zeros_like(person), cfg.back_spacing_m,
                              cfg.torso_back_spacing_m, cfg.wall_step_m, cfg.wall_rim_m, side_look=look)
        wall = np.abs(batch.normals[:, 2]) < 1e-6
        deep = batch.means[wall, 2] - z_front > 0.04
        return float((np.abs(batch.colors[wall][deep, 0] - 0.5) > 1e-3).mean())

    reach = 12 / 0.04  # px per metre: 12 px at 4 cm, 18 at 6 cm (past the band)
    assert detailed_deep_wall(SideLook(texture=tex, texture_px_per_m=reach)) < 0.5  # flat from 5.3 cm back
    assert detailed_deep_wall(SideLook(texture=tex, texture_px_per_m=reach, texture_fold_px=(6.0, 14.0))) > 0.9


def test_a_cut_sections_discs_stay_within_the_cut():
    """Where the photo cuts the body off (here: the image's right and bottom borders), coarse wall columns
    (torso_back_spacing_m) close its section. Their round discs (sigma 6.3 mm) faced sideways, so the front view
    saw each edge-on as a line 2 x 2.5 sigma long along the outline: at the cut's ends they stood out past it, the
    dark spikes at both ends of trump's and sadtalker's shoulders (render node at fov 30, session 18; 8.8 px past the
    bottom at this scale). Every one now reaches at most OUTLINE_SIGMAS sigma along the outline inside it."""
    from gaussian_head_ros.core.control import quat_to_matrix
    from gaussian_head_ros.core.reconstruct.completion import OUTLINE_SIGMAS, Scene, back_and_wall
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitConfig
    from gaussian_head_ros.core.reconstruct.surfaces import open_border, pixel_rays

    cfg = MeshFitConfig()
    size, f, z_front, z_back = 128, 300.0, 0.5, 0.6
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ii, jj = np.mgrid[0:size, 0:size]
    person = (ii >= 60) & (jj >= 30)  # a body cut off by the image's right and bottom borders
    grey = np.full((size, size, 3), 0.3, np.float32)
    scene = Scene(K, np.eye(3), np.zeros(3), grey, person, np.where(person, z_front, np.inf), pixel_rays(K, size), 0.0)
    front, back = np.full((size, size), z_front, np.float32), np.full((size, size), z_back, np.float32)
    open_edge = cv2.dilate(open_border(person, np.zeros_like(person)).astype(np.uint8), np.ones((3, 3), np.uint8))
    batch = back_and_wall(scene, front, back, grey, grey, grey, open_edge.astype(bool), cfg.back_spacing_m,
                          cfg.torso_back_spacing_m, cfg.wall_step_m, cfg.wall_rim_m, inset_px=cfg.edge_band_px + 0.5)
    section = (np.abs(batch.normals[:, 2]) < 1e-6) & (batch.scales.max(1) > 0.6 * cfg.torso_back_spacing_m)
    assert section.sum() > 50
    axes = np.stack([quat_to_matrix(q) for q in batch.quats[section]])  # [M, 3, 3] columns: the disc's axes
    worst = 0.0
    for k in (0, 1):  # its two in-plane axes, OUTLINE_SIGMAS sigma either way
        for sign in (1, -1):
            end = batch.means[section] + sign * OUTLINE_SIGMAS * batch.scales[section, k, None] * axes[:, :, k]
            u, v = end[:, 0] / end[:, 2] * f + size / 2, end[:, 1] / end[:, 2] * f + size / 2
            worst = max(worst, float(np.max(np.maximum(u - size, 0) + np.maximum(v - size, 0))))
    assert worst < 1.5, f"a cut's section disc reaches {worst:.1f} px past the photo's border"


def test_edge_opacity_inverts_the_compositing_equation():
    """A silhouette pixel I = a F + (1 - a) B gives its coverage a back; where F and B look alike it is opaque."""
    from gaussian_head_ros.core.reconstruct.completion import edge_opacity

    rng = np.random.default_rng(0)
    fg, bg = rng.random((200, 3)), rng.random((200, 3))
    a = rng.random(200)
    observed = a[:, None] * fg + (1 - a[:, None]) * bg + rng.normal(0, 0.005, (200, 3))
    got = edge_opacity(observed, fg, bg)
    clear = np.linalg.norm(fg - bg, axis=1) > 0.3
    assert np.abs(got - a)[clear].max() < 0.05
    assert edge_opacity(np.full((1, 3), 0.5), np.full((1, 3), 0.5), np.full((1, 3), 0.52))[0] == 1.0
    assert edge_opacity(np.full((1, 3), 2.0), np.zeros((1, 3)), np.ones((1, 3)))[0] == 0.0  # clipped to [0, 1]


def test_the_backdrop_taken_in_by_the_outline_moves_to_the_persons_own_colour():
    """A skin disc before red and white stripes, its mask 6 px too wide on one side (the stripe's red inside it, as
    obama_speech's jaw) and its outermost pixel a half mix: backdrop_rim.backdrop_share takes those to the skin's
    colour (as 8 px inside); the skin's own shading at the rim (darker along the direction of no backdrop colour) away
    from them and the rim along a cut stay as they are."""
    from gaussian_head_ros.core.reconstruct.backdrop_rim import backdrop_share

    s = 128
    yy, xx = np.mgrid[:s, :s] + 0.5
    r = np.hypot(yy - 64, xx - 64)
    skin, red, white = np.array([0.66, 0.41, 0.29]), np.array([0.61, 0.18, 0.2]), np.array([0.92, 0.9, 0.9])
    photo = np.where(((xx // 8) % 2 == 0)[..., None], red, white)  # stripes 8 px wide
    face = r < 40
    shade = 1 - 0.15 * np.clip((r - 34) / 6, 0, 1)  # the skin darkening to its own outline
    photo[face] = (skin * shade[..., None])[face]
    edge = (r >= 39) & (r < 40)
    photo[edge] = 0.5 * photo[edge] + 0.5 * (skin * 0.85)
    taken = (r >= 40) & (r < 46) & (xx < 40)  # the mask's overshoot on the left: whatever backdrop lies there
    person = face | taken
    photo = photo.astype(np.float32)
    w, own = backdrop_share(photo, person, np.zeros_like(person))
    moved = photo + w[..., None] * (own - photo)
    assert np.abs(moved[taken] - skin).max(-1).mean() < 0.05, "the backdrop inside the mask kept its colour"
    beside = cv2.dilate(taken.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)  # its neighbours move too
    assert np.abs(moved - photo)[face & ~edge & ~beside].max() < 0.02, "the skin's own shading at its rim was changed"
    cut = np.zeros_like(person)
    cut[:, :40] = True  # the same left side as a cut: the body goes on there
    assert backdrop_share(photo, person, cut & person)[0][taken].max() == 0.0
    with pytest.raises(ValueError, match="same size"):
        backdrop_share(photo, person[:64], np.zeros_like(person))


def test_the_backdrop_itself_inside_the_outline_is_told_from_its_mixes_with_the_person():
    """backdrop_rim.backdrop_kept, what source_view.person_mask gives the person's own colour on the head's side:
    the same skin disc before red and white stripes, its mask 6 px too wide on the left (the stripes themselves
    inside it, as the flag's red stripe beside obama_speech's jaw), and on the right its outermost 2 px half skin,
    half the backdrop (a mix: backdrop_share moves it by its share, the photo's own view keeps it). Only the
    backdrop itself is told; not the mix, not the skin's own shading, not along a cut."""
    from gaussian_head_ros.core.reconstruct.backdrop_rim import backdrop_kept

    s = 128
    yy, xx = np.mgrid[:s, :s] + 0.5
    r = np.hypot(yy - 64, xx - 64)
    skin, red, white = np.array([0.66, 0.41, 0.29]), np.array([0.61, 0.18, 0.2]), np.array([0.92, 0.9, 0.9])
    photo = np.where(((xx // 8) % 2 == 0)[..., None], red, white)
    face = r < 40
    shade = 1 - 0.15 * np.clip((r - 34) / 6, 0, 1)
    photo[face] = (skin * shade[..., None])[face]
    mixed = (r >= 38) & (r < 40) & (xx > 88)
    photo[mixed] = 0.5 * (skin * 0.85) + 0.5 * np.where(((xx[mixed] // 8) % 2 == 0)[:, None], red, white)
    taken = (r >= 40) & (r < 46) & (xx < 40)
    person = face | taken
    photo = photo.astype(np.float32)
    kept, own = backdrop_kept(photo, person, np.zeros_like(person))
    assert kept[taken].mean() > 0.9, f"{kept[taken].mean():.2f} of the backdrop inside the mask told"
    beside = cv2.dilate(taken.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)  # the strip's ends' rim
    assert not kept[face & ~beside].any(), f"{int(kept[face & ~beside].sum())} pixels of skin or its mix told"
    assert not kept[mixed].any()
    cut = np.zeros_like(person)
    cut[:, :40] = True
    assert not backdrop_kept(photo, person, cut & person)[0][taken].any()
    assert np.abs(own[taken] - skin).max(-1).mean() < 0.05, "the person's own colour there is not the skin's"
    # the backdrop's colour on the outermost ring alone (the edge matte's band, which never draws it: lp_d0's green
    # screen spilt on its hair's outline) and on single pixels further in is not a strip taken in: not told (rim60)
    ring = face & (r >= 39) & (yy < 40)
    lone = np.zeros_like(face)
    lone[[64, 80, 48], [27, 28, 29]] = True  # 1-3.5 px inside the disc's left side, 16 px apart
    spilt = photo.copy()
    spilt[ring | lone] = red
    told = backdrop_kept(spilt, face, np.zeros_like(face))[0]
    assert not told[cv2.dilate((ring | lone).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)].any()
    # a red mouth inside the face within reach of the strip: the person has that colour near, and half the strip's
    # red stays untold (0.51 told; its white all), unless the mouth's colours are not counted as the person's
    # (not_own: obama_speech's open mouth, rim60)
    mouth = face & (np.hypot(yy - 64, xx - 52) < 10)
    opened = photo.copy()
    opened[mouth] = red
    stripe_red = taken & ((xx // 8) % 2 == 0)
    assert backdrop_kept(opened, person, np.zeros_like(person))[0][stripe_red].mean() < 0.6
    assert backdrop_kept(opened, person, np.zeros_like(person), not_own=mouth)[0][stripe_red].mean() > 0.9


def test_the_rest_pose_shows_no_red_streak_from_the_flag_beside_the_jaw(results):
    """obama_speech's person mask takes in 2-4 px of the flag's red stripe beside his right jaw (rgb 0.61 0.16
    0.20); rim57 moved it out of what a turned view sees, but the photo's own view and the rest pose (what the
    person before the robot sees most of the time) kept it: a red streak down his jaw in every frame (lead and
    user58, session 58). The backdrop itself along the head's side now takes his own colour
    (backdrop_rim.backdrop_kept, source_view.person_mask; rim59 peeled it above his jaw's corner). Flag-red pixels
    (as the turned test counts them, in its box) at rest from the photo's camera: 241 before (rim59's
    MeshFitConfig.peel_backdrop_rim False, as main a915618), 108 now; what stays is the outline's pink mixes of his
    skin with the stripe, which the photo's own view needs (rim59). On main 94faf56 (neck59, lips59, rec59) 240 ->
    107 with the stripe alone told, 64 with his open mouth's red not counted as his colour near the outline (98 with
    the lips' polygon not grown); all of it in his own colour, none peeled (MeshFitConfig.own_backdrop_rim,
    backdrop_mouth_px; rim60)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_speech.jpg"].avatar, 0, 0, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    box = img[150:345, 100:215]
    assert (box.max(-1) > 0.02).mean() > 0.3, "the box is not on his jaw"
    red = int(_flag_red(box).sum())
    assert red < 0.4 * 241, f"{red} flag-red pixels beside the jaw at rest (241 before)"


def test_completion_points_spread_evenly_over_their_triangles():
    """Face-completion points cover their triangles without the gaps independent uniform samples leave
    (4 % of the area further than 1.5 disc sigmas, 0.7 x spacing, from every point at one point per
    spacing^2: the back showed through a completed cheek as dark flecks); evenly spread, 0.2 %."""
    from gaussian_head_ros.core.reconstruct.completion import sample_triangles

    v = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.05, 0.0], [0.05, 0.05, 0.0]])
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    spacing = 0.002
    fid, bary = sample_triangles(v, faces, np.arange(2), spacing, np.random.default_rng(0))
    pts = np.einsum("mk,mkc->mc", bary, v[faces[fid]])[:, :2]
    assert abs(len(pts) - 2 * 0.5 * 0.05 ** 2 / spacing ** 2) < 4
    g = np.stack(np.meshgrid(np.linspace(0.001, 0.049, 120), np.linspace(0.001, 0.049, 120)), -1).reshape(-1, 2)
    near = np.full(len(g), np.inf)
    for k in range(0, len(pts), 200):
        near = np.minimum(near, np.linalg.norm(g[:, None] - pts[None, k:k + 200], axis=-1).min(1))
    uncovered = np.mean(near > 1.5 * 0.7 * spacing)
    assert uncovered < 0.01, f"{uncovered:.3f} of the triangles further than 1.5 sigma from every point"


def test_the_photo_layer_grid_has_no_gap_where_head_meets_torso():
    """The head's grid (every head_stride px) and the torso's (every torso_stride px) met with rows up to
    hs + ts - 1 = 4 px apart: the back's dark discs showed through as a line across lp_d0's neck (0.06 darker).
    Now no two grid rows are further apart than the torso's stride."""
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitReconstructor
    from gaussian_head_ros.core.reconstruct.photo_layer import select_pixels

    rec = MeshFitReconstructor()
    size = 64
    person = np.ones((size, size), bool)
    for boundary in range(30, 36):  # wherever the torso starts
        torso = np.zeros_like(person)
        torso[boundary:] = True
        (bi, bj, hs, ts, _), _ = select_pixels(rec.cfg, np.zeros((size, size, 3), np.float32), person, ~torso, torso,
                                              10_000)
        rows = np.unique(bi[bj == bj[0]])
        assert np.diff(rows).max() <= ts, (boundary, rows)


def test_letterbox_bars_lie_outside_the_photo_and_the_head_mask():
    """lp_d0 is letterboxed (27 black rows under the jacket): the segmentation called the bar person, so the
    avatar carried a black slab on its chest and eval counted the bar's blurred edge as head error (47 % of
    frame 0's). The bar is outside the photo (framing `valid`; the head frame still fitted in the whole image, as
    a tracker sees it) and outside eval's head mask. Portraits without bars, or with a black backdrop that fades
    into the picture, keep every line."""
    from gaussian_head_ros.core.evaluate import head_mask
    from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, border_bars, frame_photo
    from gaussian_head_ros.core.video import read_frames

    frame = read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=1)[0].rgb
    assert border_bars(frame) == (0, 27, 0, 0)
    photo = read_image(str(shared("portraits", "astronaut_eileen_collins.png")))
    assert border_bars(photo) == (0, 0, 0, 0)
    assert border_bars(np.concatenate([np.zeros((20, photo.shape[1], 3), np.uint8), photo], 0)) == (20, 0, 0, 0)
    assert border_bars(np.concatenate([np.zeros((photo.shape[0], 15, 3), np.uint8), photo], 1)) == (0, 0, 15, 0)
    backdrop = photo.copy()
    backdrop[:30] = 0
    backdrop[30:60] = np.linspace(5, 40, photo.shape[1])[None, :, None].astype(np.uint8)  # a dark backdrop
    # going on past the uniform lines (a vignette): no step, no bar
    assert border_bars(backdrop)[0] == 0
    with FaceMesh(static_image_mode=True, max_faces=1) as mesh, PersonSegmenter() as seg:
        lm = mesh.detect(frame)[0].landmarks_px
        assert seg.probability(frame)[485:500].mean() > 0.5  # the segmentation's mistake the rule is for
        assert not head_mask(frame, lm, seg)[485:].any()
        cut = frame_photo(frame, mesh, FramingConfig())
        whole = frame_photo(frame, mesh, FramingConfig(trim_bars=False))
    np.testing.assert_allclose(cut.landmarks_px, whole.landmarks_px, atol=1e-4)  # same head frame
    lost = whole.valid & ~cut.valid
    rows = np.flatnonzero(lost.any(1))
    assert len(rows) and not (cut.valid & ~whole.valid).any()
    # the lost rows are the bar's, at the crop's scale (27 photo rows), all at the bottom
    assert rows.min() > 300 and 27 * 0.5 < len(rows) < 27 * 1.2 and lost[rows].sum(1).min() >= whole.valid[rows].sum(1).min()


def test_the_bust_s_last_rows_above_the_photo_s_cut_are_the_photo_s():
    """lp_d0's frame 0 ends at a letterbox bar (the photo's cut) under the jacket. The photo layer's torso grid
    lay up to a stride above the cut and its discs' coverage fell off over the rows between, where the wall
    closing the body's section behind the cut showed through: a light line and a dark band along the bust's
    bottom edge in the photo's own pose (its last 4 rows 1.58 x the error of the rows 8-16 above them; frame 0
    of self lp_d0 34.846 dB, of which the mask's last 6 rows cost 0.15 dB). The torso's last row above a cut
    takes a row of the grid's columns (`photo_layer.select_pixels`' at_cut): 1.00 x (trump_official's cut chest
    1.59 -> 1.45 x, sadtalker's frame 0 0.76 -> 0.55 x; frame 0 lp_d0 / lp_d18 / sadtalker / tpsmm 34.846 /
    39.614 / 29.274 / 37.861 -> 34.908 / 39.662 / 29.307 / 37.861 dB)."""
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize
    from gaussian_head_ros.core.video import read_frames

    res = mesh_fit_result(read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=1)[0].rgb)
    a = res.avatar
    rot, view = photo_pose(a)
    p = Driver(a).drive(FaceControl(expression=res.expression, rotation=matrix_to_quat(rot).astype(np.float32)),
                        viewmat=view)
    K, w, h = source_intrinsics(a)
    r = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, w, h, backend="cpu")
    photo = res.photo.astype(np.float32) / 255
    repeats = np.all(photo[1:] == photo[:-1], axis=(1, 2))  # below the cut the crop repeats the photo's last row
    cut = int(np.flatnonzero(~repeats).max()) + 2
    assert 300 < cut < h - 20, cut  # the bar's 27 rows, at the crop's scale
    cols = r.alpha[cut - 10] > 0.9  # the bust's columns
    err = np.abs(r.image - photo).mean(-1)
    last, above = err[cut - 4:cut][:, cols].mean(), err[cut - 16:cut - 8][:, cols].mean()
    assert last <= 1.25 * above, f"the bust's last rows {last:.4f} vs {above:.4f} above them"


def test_a_photo_with_a_small_face_is_said_to_make_a_soft_avatar():
    """A photo whose face is ~75 px wide made an avatar with a ragged hair outline and soft detail, and nothing said
    so (user56, s56: obama_official scaled down). Its crop is the photo enlarged more than LOW_RES_UPSAMPLE: said, with
    the face width that gives a sharper one; the full-size photo is not."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

    rgb = read_image(str(shared("portraits", "obama_official.jpg")))
    said = "may be ragged; a photo with the face 180 px wide or more gives a sharper avatar"
    with FaceMesh() as mesh:
        full = frame_photo(rgb, mesh, FramingConfig())
        s = 75 / full.face_width_px
        small = frame_photo(cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), mesh, FramingConfig())
    assert not [w for w in full.warnings if said in w], full.warnings
    assert [w for w in small.warnings if said in w and w.startswith("the face is 75 px wide")], small.warnings


def test_a_black_and_white_photo_is_said_in_the_warnings():
    """A greyscale photo made a grey avatar with no word about it (AvatarStatus warnings empty): a user sending
    an old ID photo saw a grey face on the robot and no reason. The framing says it; a colour photo, and the
    palest ../shared one (business_person), say nothing."""
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

    colour = read_image(str(shared("portraits", "obama_official.jpg")))
    grey = cv2.cvtColor(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    ok, jpg = cv2.imencode(".jpg", grey[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])  # as a 3-channel JPEG
    with FaceMesh(static_image_mode=True, max_faces=1) as mesh:
        said = [frame_photo(img, mesh, FramingConfig()).warnings
                for img in (grey, cv2.imdecode(jpg, cv2.IMREAD_COLOR)[..., ::-1], colour,
                            read_image(str(shared("portraits", "business_person.png"))))]
    assert [any("no colour" in w for w in ws) for ws in said] == [True, True, False, False], said


# ---------------------------------------------------------------------------------------------------
# every portrait


@pytest.fixture(scope="module")
def rec():
    with get_reconstructor("mesh_fit") as r:
        yield r


def disc_width(g) -> np.ndarray:
    """[N] each Gaussian's middle scale (metres) in a GaussianAvatar (log_scales) or a GaussianBatch (scales): a flat
    disc's sigma across its long axis, a round one's sigma. The synthetic mouth's parts are told apart by it: teeth
    0.7 x MouthConfig.teeth_spacing_m (their discs taller, teeth_disc_aspect), tongue, cavity and back wall 0.75 x
    their spacings."""
    scales = np.exp(np.asarray(g.log_scales, np.float64)) if hasattr(g, "log_scales") else np.asarray(g.scales)
    return np.sort(scales, 1)[:, 1]


@pytest.fixture(scope="module")
def results():
    from gaussian_head_ros.core.imageio import read_image

    shared("portraits", PORTRAITS[0] if PORTRAITS else "")  # no portraits: skip (saying where they were looked for)
    return {name: mesh_fit_result(read_image(str(SHARED / "portraits" / name)), operator_id=name)
            for name in PORTRAITS}


@pytest.mark.parametrize("name", PORTRAITS)
def test_every_portrait_makes_a_valid_drivable_avatar(results, name, tmp_path):
    from gaussian_head_ros.core.avatar import PART_FACE, PART_MOUTH, PART_STATIC, load_ply, pack_sh_rest, save_ply

    res = results[name]
    a = res.avatar
    a.validate(max_gaussians=60_000)
    assert a.operator_id == name and a.reconstructor.startswith("mesh_fit")
    assert a.template_vertices.shape == (478, 3) and a.template_faces.shape == (852, 3)
    assert a.sh_degree == 1 and a.lighting_sh.shape == (9, 3)  # band 1: the edge-on rim (builder.edge_on_sh)
    rows, values = pack_sh_rest(a.sh)  # band 1 travels on its rows only (nodes/conversions.avatar_to_msg)
    message_bytes = (a.table(0).nbytes + rows.nbytes + values.nbytes + a.template_vertices.nbytes
                     + a.template_faces.nbytes)
    assert message_bytes <= MESSAGE_LIMIT
    parts = set(np.unique(a.part).tolist())
    assert {PART_STATIC, PART_FACE, PART_MOUTH} <= parts
    face = a.part == PART_FACE
    carried = (a.part == PART_STATIC) & (a.face_id >= 0)  # the upper lids' lash bands (eyelids.margin_binding)
    assert np.all(a.face_id[face] >= 0) and np.all(a.face_id[~face & ~carried] == -1)
    from gaussian_head_ros.core.reconstruct.eyelids import lid_rings

    assert lid_rings(a.template_faces)[0][a.face_id[carried]].all() and 0 < carried.sum() < 2000
    assert np.allclose(a.bary[face].sum(1), 1, atol=1e-4) and np.all(a.bary[face] >= -1e-4)
    assert np.allclose(np.linalg.norm(a.normals, axis=1), 1, atol=1e-3)
    assert res.photo.shape == (512, 512, 3) and res.mask.shape == (512, 512) and res.mask.mean() > 0.1
    assert a.source_camera is not None and a.source_camera.size == (512, 512)
    save_ply(a, tmp_path / "a.ply")
    assert load_ply(tmp_path / "a.ply").equals(a)


@pytest.mark.parametrize("name", PORTRAITS)
def test_the_photos_expression_reproduces_the_photo(results, name):
    """The avatar rests without the photo's expression; driven with it, it gives the photo back. Its view-dependent
    colours are seen from the camera it is drawn through (drive's viewmat, as source_view, evaluate and the render node
    give it): without it they are seen along +z, and the photo layer's edge-on discs, whose band-1 colour gives the
    photo's rim to the photo's camera alone (builder.edge_on_sh), showed the wrong share of it (matte26: trump_official
    35.545 dB so, 35.603 through the camera; main's 35.578 / 35.603)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.control import matrix_to_quat
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    res = results[name]
    a = res.avatar
    assert res.expression.shape == (478, 3)
    rot, view = photo_pose(a)  # the photo's head pose through the control, as the tracker measures it
    p = Driver(a).drive(FaceControl(expression=res.expression, rotation=matrix_to_quat(rot).astype(np.float32)),
                        viewmat=view)
    K, w, h = source_intrinsics(a)
    img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, w, h,
                    backend="cpu").image
    value = psnr(img, res.photo.astype(np.float32) / 255, res.mask)
    if res.info.get("lip_retextured"):
        # a photo opened beyond what its lips close by stretching rests with re-textured closed lips
        # (lips.closed_lips), which its own pose shows too: lp_d9_woman_turned's scream 38.8 -> 29.1 dB
        assert value >= 27.0, f"{name}: {value:.2f} dB in the head region"
        return
    assert value >= 30.0, f"{name}: {value:.2f} dB in the head region"
    # what was built in the photo's pose: exact but for rest_pose.undo_falloff's fixed point, which leaves a few
    # hundred static Gaussians of a strong expression mm off (obama_speech, 33.9 mm: 34.23 vs 34.55 dB). trump_official
    # 36.167 vs 36.57 since the flag strip beside his ear left the mask (surfaces.peel_unlike_rim, session 27; 35.588 vs
    # 35.94 before): both measures rose by dropping a strip neither reproduced, the render itself is as it was (36.164
    # dB over the new mask before, 36.167 after). The build scores its render over the photo's own backdrop, this
    # one draws on black: with the matte's band 1 px (edge_band_px, session 35) its second ring is in the mask, matte
    # pixels where trump's light backdrop and black differ (his hair's outline): 36.04 vs 36.55 (36.31 vs 36.73 at 2 px)
    assert value == pytest.approx(res.info["psnr_head"], abs=0.55)


def test_the_photos_own_head_pose_gives_its_torso_back(results):
    """Item 6 for the torso: the control of the photo's own pose (its head rotation, as the tracker measures it,
    through a camera on the line of sight: what `gaussian-head eval` and the render node do) draws the shoulders
    where the photo shows them. The driver turns the torso by only a fraction of the control's rotation, so
    before rest_pose.turn_torso a head turned in the photo drew its torso (1 - w) x that rotation off: PSNR over
    the torso 9.8 dB on obama_speech (16 deg), 15.1 on business_person (8 deg); 26.1 / 25.0 with it."""
    from gaussian_head_ros.core.avatar import PART_TORSO
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.metrics import psnr
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    for name in ("obama_speech.jpg", "business_person.png"):
        res = results[name]
        a = res.avatar
        rot, view = photo_pose(a)
        p = Driver(a).drive(FaceControl(expression=res.expression, rotation=matrix_to_quat(rot).astype(np.float32)),
                            viewmat=view)  # the view-dependent colours seen from that camera, as those two do
        K, w, h = source_intrinsics(a)
        view = view.astype(np.float32)
        img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view, K, w, h, backend="cpu").image
        torso = np.zeros((a.num_gaussians, 3), np.float32)
        torso[a.part == PART_TORSO] = 1.0
        on_torso = rasterize(p.means, p.quats, p.scales, p.opacities, torso, view, K, w, h, backend="cpu").image[..., 0]
        assert (on_torso > 0.5).sum() > 20_000, name
        value = psnr(img, res.photo.astype(np.float32) / 255, on_torso > 0.5)
        assert value >= 22.0, f"{name}: {value:.2f} dB over the torso"


def test_two_faces_use_the_largest_and_say_so(results):
    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.imageio import read_image

    res = results["two_children_multiface.jpeg"]
    assert any(re.search(r"\b2 faces\b", w) for w in res.warnings), res.warnings
    with FaceMesh() as fm:
        faces = fm.detect(read_image(str(SHARED / "portraits" / "two_children_multiface.jpeg")))
    assert len(faces) == 2
    # the reconstructor sees the photo shrunk to max_side first: its settled landmarks differ by a few 0.1 %
    widths = sorted(f.width for f in faces)
    assert res.info["face_width_px"] == pytest.approx(widths[1], rel=0.01)


def test_pixels_nearer_another_face_are_not_this_persons_above_the_chin():
    """surfaces.nearer_other_faces: another face's region, and above this face's chin the pixels nearer it than this
    face's region (Voronoi); below the chin only its region (the body goes on under the other's hand)."""
    from gaussian_head_ros.core.reconstruct.surfaces import face_region, nearer_other_faces

    def ring(cx, cy, r):
        a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)

    own, other = ring(60, 60, 20), ring(140, 60, 20)  # grown by 0.35: radius 27
    out = nearer_other_faces(own, [other], 200, below_row=80)
    assert out[face_region(other, 200)].all()
    assert out[60, 105] and out[30, 110] and not out[60, 95] and not out[30, 90]  # the midline between them is x 100
    assert not out[:, :99].any()  # nothing on this face's side
    assert not out[150, 105] and not out[150, 170]  # below the chin's row: not split, outside the other's region
    assert np.array_equal(nearer_other_faces(own, [], 200, below_row=80), np.zeros((200, 200), bool))


def _cover_at_photo_pose(res):
    """[H, W] the avatar's coverage (0..1) at the photo's pose and expression, from the source camera, and the crop
    scale k (source size / 512)."""
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    a = res.avatar
    rot, view = photo_pose(a)
    p = Driver(a).drive(FaceControl(expression=res.expression, rotation=matrix_to_quat(rot).astype(np.float32)))
    K, w, h = source_intrinsics(a)
    cover = rasterize(p.means, p.quats, p.scales, p.opacities, np.ones_like(p.colors), view.astype(np.float32), K, w,
                      h, backend="cpu").image[..., 0]
    return cover, w / 512


def test_another_persons_hair_beside_the_head_is_not_this_avatars(results):
    """two_children: the segmentation keeps what touches the boy, and face_region left the girl's hair between her
    face and his ear in his person mask: his turned head had a dark tuft and strands beside it (issue 11 item 2).
    Now what lies nearer her face than his, above his chin, is left out. Pixels the avatar covers at the photo's pose
    in the box of her hair beside his ear (crop 512: rows 140-200, columns 335-400; the rest is his ear): 1467 on
    main f1309e3, 726 with nearer_other_faces alone (hair_matte off), 1248 with surfaces.matte_hair alone, 553 with
    both. (Her pink hair clip above, rows 100-140, is the matte's: 1016 on main, 705 with this alone, 1 with the
    matte alone; a box over both, the first form of this test, read 1249 with the matte alone and could not tell
    this rule gone once the matte was stacked, review24 s24.)"""
    cover, k = _cover_at_photo_pose(results["two_children_multiface.jpeg"])
    box = cover[int(140 * k):int(200 * k), int(335 * k):int(400 * k)]
    assert (box > 0.5).sum() < 900 * k * k, (box > 0.5).sum()


def test_the_boys_ear_beside_another_face_is_his_whole(results):
    """two_children: the girl's face region (grown by 0.35 of its size) reached over the boy's left ear, and
    nearer_other_faces gave it to her: his head kept a pointed sliver of the ear, which his turned head showed detached
    beside it (turn60). His ears' zones (surfaces.ear_zones) stay his outside her face itself. Share of his ear's box
    (crop 512: rows 178-232, columns 338-356, inside the ear) the avatar covers at the photo's pose: 0.19 on main
    94faf56 (the tip of the ear left), 0.98 now."""
    cover, k = _cover_at_photo_pose(results["two_children_multiface.jpeg"])
    box = cover[int(178 * k):int(232 * k), int(338 * k):int(356 * k)]
    assert (box > 0.5).mean() > 0.9, (box > 0.5).mean()


def test_face_gaussians_off_the_person_take_skin_not_the_background(results):
    """business_person's template cheek reaches past her real cheek (white background there): the face
    Gaussians the photo shows only on the silhouette's background-mixed edge or beyond it take the nearest
    skin's colour, not the background's white (a white dotted patch along the jaw in turned and driven views)."""
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics

    res = results["business_person.png"]
    a = res.avatar
    p = Driver(a).drive(FaceControl(expression=res.expression))  # as the photo shows them
    K, w, h = source_intrinsics(a)
    vm = np.asarray(a.source_camera.viewmat, np.float64)
    c = np.asarray(p.means, np.float64) @ vm[:3, :3].T + vm[:3, 3]
    u = np.floor(K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2]).astype(int)
    v = np.floor(K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]).astype(int)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    clean = np.zeros(len(u), bool)
    clean[inside] = res.mask[v[inside], u[inside]]  # the head without its background-mixed edge
    off = (a.part == PART_FACE) & ~clean
    assert off.sum() > 300  # the template's rim: the edge band and the overshoot past the cheek
    photo = res.photo.astype(np.float32) / 255
    assert np.all(photo[200:400, 440:500] > 0.9)  # the background beside her left cheek is white
    white = np.asarray(p.colors)[off].min(1) > 0.85  # the background's white (162 of them before the fix, 0 now)
    assert white.sum() <= 5, f"{white.sum()} of {off.sum()} face Gaussians off the clean head are background-white"


def test_turned_head_is_completed_without_holes(results):
    """At +-20 deg yaw the head region keeps covering itself: no see-through holes inside the silhouette."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    for name in ("obama_official.jpg", "lp_d9_woman_turned.jpg"):
        a = results[name].avatar
        for yaw in (-20, 20):
            img = source_view(a, yaw, backend="cpu", background=(1.0, 0.0, 1.0))
            covered = ~np.all(np.abs(img - [1.0, 0.0, 1.0]) < 0.08, axis=-1)
            # holes: background pixels enclosed by the avatar
            filled = covered.copy()
            ff = np.zeros((514, 514), np.uint8)
            inv = (~covered).astype(np.uint8)
            cv2.floodFill(inv, ff, (0, 0), 0)
            holes = inv.astype(bool)
            assert holes.sum() < 30, f"{name} at {yaw} deg: {holes.sum()} see-through pixels inside the avatar"
            assert filled.mean() > 0.1


def test_a_pitched_torso_is_closed_where_the_photo_cuts_it(results):
    """trump_official's photo ends at the chest inside the source crop: the body is cut there. Pitched up 20-25 deg
    (as sadtalker frames 30-32 drive it) the old avatar showed its inside through the cut: a see-through seam
    between the jacket and the cut, 40-180 px at 512^2 (67 px in the living-face table); the cut's section is
    now closed (0-5 px)."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.holes import hole_mask
    from gaussian_head_ros.core.reconstruct.preview import source_view

    a = results["trump_official.png"].avatar
    driver = Driver(a)
    for pitch in (-20, -25):
        for yaw in (-10, 0, 10):
            on_black, on_white = (source_view(a, yaw, pitch, background=bg, backend="cpu", driver=driver)
                                  for bg in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
            n = int(hole_mask(on_black, on_white).sum())
            assert n < 20, f"pitch {pitch} yaw {yaw}: {n} see-through pixels at the cut torso"


@pytest.fixture(scope="module")
def trump_with_fringe():
    from gaussian_head_ros.core.imageio import read_image

    with get_reconstructor("mesh_fit", bust_fringe_m=0.03) as r:
        return r.reconstruct(read_image(str(shared("portraits", "trump_official.png"))), operator_id="trump_official.png")


def test_a_bust_cut_off_by_the_photo_ends_soft_in_a_wide_view(trump_with_fringe):
    """trump_official's photo ends at the chest. The render node's view at fov 45 deg (head at 0.6 m, as
    user17 set it on a coloured background) showed the bust ending in a hard straight edge: 2-3 rows of partial
    coverage per column (median 3). With a bust fringe the bust goes on beyond the photo's cut and fades out over
    bust_fringe_m (median >= 10 rows at 512^2)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import head_viewmat, intrinsics_from_fov, rasterize

    a = trump_with_fringe.avatar
    view = head_viewmat(0.6)
    p = Driver(a).drive(FaceControl.rest(), viewmat=view)
    alpha = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view, intrinsics_from_fov(45.0, 512, 512),
                      512, 512, backend="cpu").alpha
    cols = np.flatnonzero(alpha[300:].max(0) > 0.9)  # the columns through the bust (the head ends above row 300)
    assert len(cols) > 150
    soft = np.array([((alpha[250:, c] > 0.1) & (alpha[250:, c] < 0.9)).sum() for c in cols])
    assert np.median(soft) >= 10, f"the bust's lower edge is {np.median(soft)} rows soft (median over columns)"


def test_the_bust_fringe_leaves_the_photo_layer_as_it_was(results, trump_with_fringe):
    """Every avatar sits at max_gaussians. Taken from the photo layer's budget, the fringe's ~1-2k Gaussians moved
    its sampling everywhere (session 17: lp_d9's closed lips read jawOpen 0.25 instead of < 0.20, cross brow
    -0.014). They are traded for the hidden back's (merged 4 -> 1 where it faces away): the photo layer is the one
    an avatar without the fringe has, but for a few torso Gaussians whose rest turn level moved (< 0.5 mm)."""
    r, r0 = trump_with_fringe, results["trump_official.png"]
    n = r.info["photo_layer"]
    assert r.info["bust_fringe"] > 500 and r0.info["bust_fringe"] == 0
    assert n == r0.info["photo_layer"] and r.avatar.num_gaussians <= 60_000
    a, b = r.avatar, r0.avatar
    assert np.abs(a.means[:n] - b.means[:n]).max() < 5e-4
    assert np.abs(a.sh[:n, 0] - b.sh[:n, 0]).max() < 1e-3 and np.array_equal(a.logit_opacities[:n], b.logit_opacities[:n])


@pytest.mark.parametrize("name", ["business_person.png", "lp_d9_woman_turned.jpg"])
def test_a_smaller_budget_gives_the_face_its_share(results, name):
    """The completion (hidden back and wall, eyeballs, mouth interior, closed-lid skin, an open-mouth photo's closed
    lips) was ~24.5-30 k Gaussians whatever max_gaussians: below ~25 k (its range says 5,000) the photo was refused
    ('avatar has 24521 Gaussians, above the budget of 8000'), the fast preset (30 k) refused lp_d9_woman_turned's open
    mouth (30,286) and left business_person's photo layer 5.8 k (its rest fit in the head 27.3 dB, the default's
    31.0). Its spacings now widen with a smaller budget (mesh_fit.budget_spacings): within the budget, the photo layer
    at least 45 % of it (COMPLETION_MOST 0.55), business_person's fast rest fit within 2 dB of the default's (session 48)."""
    from gaussian_head_ros.core.imageio import read_image

    rgb = read_image(str(shared("portraits", name)))
    full = results[name].info
    for options, budget in (({"max_gaussians": 8000}, 8000), ({"preset": "fast"}, 30_000)):
        r = mesh_fit_result(rgb, **options)
        assert budget - 200 <= r.avatar.num_gaussians <= budget, (options, r.avatar.num_gaussians)
        assert r.info["photo_layer"] >= 0.45 * budget, (options, r.info["photo_layer"])
        assert r.info["completion_scale"] > 1.4, (options, r.info["completion_scale"])
        if budget == 30_000:
            # (lp_d9's open mouth: 14 k of photo layer against the default's 29 k: 33.6 against 37.7 dB)
            near = 2.0 if name == "business_person.png" else 4.5
            assert r.info["psnr_head"] > full["psnr_head"] - near, (r.info["psnr_head"], full["psnr_head"])
    assert full["completion_scale"] == 1.0 and full["photo_layer"] < 0.7 * 60_000


def test_a_spacing_set_finer_than_a_small_budget_allows_is_named(caplog):
    """max_gaussians 5000 with back_spacing_m 0.002 (kept: the user set it) left no room for the photo layer: an
    ERROR line with a traceback (CompletionOverBudget, then 'avatar has 12926 Gaussians, above the budget of 5000')
    that named neither option (user48b). Now one ReconstructionError names the spacing set, no traceback; and a whole
    float for an integer option (max_gaussians=5e3) is that integer, a fractional one refused."""
    import logging

    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.mesh_fit import make_config

    rgb = read_image(str(shared("portraits", "business_person.png")))
    with caplog.at_level(logging.ERROR), pytest.raises(ReconstructionError) as e:
        mesh_fit_result(rgb, max_gaussians=5000, back_spacing_m=0.002)
    assert "back_spacing_m set finer than the budget allows" in str(e.value), str(e.value)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert make_config(max_gaussians=5000.0).max_gaussians == 5000
    with pytest.raises(ValueError, match="max_gaussians must be an integer, got 5000.5"):
        make_config(max_gaussians=5000.5)


def test_the_budgets_spacings_keep_what_the_user_set():
    """budget_spacings widens the completion's spacings by sqrt(60000 / max_gaussians) below the default budget, but
    not a spacing the user gave, and not at all at or above the default's budget (the default avatars unchanged)."""
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitConfig, make_config

    base = MeshFitConfig()
    assert make_config() == base and make_config("dense").wall_step_m == base.wall_step_m
    cfg = make_config(max_gaussians=15_000, back_spacing_m=0.006)
    assert cfg.back_spacing_m == 0.006
    assert cfg.wall_step_m == pytest.approx(2 * base.wall_step_m)
    assert cfg.eyeball.spacing_m == pytest.approx(2 * base.eyeball.spacing_m)
    assert cfg.mouth.teeth_spacing_m == pytest.approx(2 * base.mouth.teeth_spacing_m)
    assert cfg.lips.fill_spacing_m == pytest.approx(2 * base.lips.fill_spacing_m)
    assert cfg.lining_spacing_m == base.lining_spacing_m  # the lining fills the coarser photo layer's gaps


def test_the_jaw_has_no_light_line_over_the_neck(results):
    """business_person's jaw drew a crisp light beaded line over the neck on the display (its frontal view at rest
    already: the rest pose takes out the photo's 7 deg head turn): the colour refinement had lit the photo discs
    either side of the jaw's outline up towards the photo's lit rim, discs the display sees apart (the neck lies 5-10
    mm behind the jaw's edge). They may not get lighter than the photo there (MeshFitConfig.jaw_lighten). The ridge
    along the jaw on a 1024 px display (luma over the brighter of the pixels 4 px above and below, its max within 10
    px of the template's jaw outline, mean along it), yaw 0 / -20: 0.031 / 0.048 before, 0.010 / 0.014 with the rule
    (obama_official, no line: 0.007 / 0.008) (session 48)."""
    from gaussian_head_ros.core.colour import LUMA
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.render import rasterize

    size = 1024
    K = default_intrinsics(size, size, 8.0).astype(np.float64)
    view = np.eye(4, dtype=np.float32)
    view[2, 3] = 2.0
    outline = [172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397]  # the jaw, ear to ear under the chin
    driver = Driver(results["business_person.png"].avatar)
    ridge = {}
    for yaw in (0, -20):
        q = euler_to_quat(yaw, 0, 0).astype(np.float32)
        p = driver.drive(FaceControl(face_detected=True, rotation=q, translation=np.array([0, 0, 2.0], np.float32)),
                         viewmat=view)
        img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view, K.astype(np.float32), size, size,
                        backend="cpu").image
        luma = cv2.GaussianBlur((img @ LUMA).astype(np.float32), (0, 0), 0.7)
        r = np.clip(luma - np.maximum(np.roll(luma, 4, 0), np.roll(luma, -4, 0)), 0, None)
        v = driver.verts[outline] @ quat_to_matrix(q).T + (0, 0, 2.0)
        u, w = K[0, 0] * v[:, 0] / v[:, 2] + K[0, 2], K[1, 1] * v[:, 1] / v[:, 2] + K[1, 2]
        order = np.argsort(u)
        xs = np.arange(int(u.min()) + 10, int(u.max()) - 10)
        ys = np.interp(xs, u[order], w[order]).astype(int)
        ridge[yaw] = float(np.mean([r[y - 10:y + 10, x].max() for x, y in zip(xs, ys)]))
    assert max(ridge.values()) < 0.02, ridge


def test_a_pitched_crown_has_no_hole_where_the_mask_leaves_a_thin_strand(results):
    """obama_official's grey hair at the crown is peeled off the person mask as background, except a 1-2 px arc
    of it round the notch; the silhouette matte leaves such a strand half-transparent with nothing of the closed
    head behind it, and pitched and turned (sadtalker frames 34-43) it closed over the notch: a 23-39 px hole at
    the crown. Strands thinner than the matte's two bands are dropped from the silhouette (0-7 px)."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.holes import hole_mask
    from gaussian_head_ros.core.reconstruct.preview import source_view

    a = results["obama_official.jpg"].avatar
    driver = Driver(a)
    worst = {}
    for pitch in (-20, -10, 10, 20):
        for yaw in (-10, 0, 20):
            on_black, on_white = (source_view(a, yaw, pitch, background=bg, backend="cpu", driver=driver)
                                  for bg in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
            worst[(yaw, pitch)] = int(hole_mask(on_black, on_white).sum())
    assert max(worst.values()) < 12, f"see-through pixels at the head (yaw, pitch): {worst}"


def test_a_small_faces_grey_crown_is_not_peeled_to_a_tuft(results):
    """obama_official scaled to a 130 px wide face (a webcam selfie's size; the crop then upsamples the photo,
    FramedPhoto.source_px 0.74): refine_silhouette's texture floor, set for full-size photos, took his grey crown
    for the smooth blue-grey backdrop and peeled it to a tuft (user56's ragged hair outline, s57): the crown's
    rendered silhouette (frontal, at rest, above the brows) overlapped the full-size photo's by IoU 0.81. With the
    floor in proportion to the photo pixels per crop pixel: 0.94."""
    from dataclasses import replace

    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.imageio import read_image

    full = results["obama_official.jpg"]
    rgb = read_image(str(shared("portraits", "obama_official.jpg")))
    s = 130 / full.info["face_width_px"]
    small = mesh_fit_result(cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)).avatar
    K = default_intrinsics(512, 512, 12.0)
    rest = replace(FaceControl.rest(), translation=np.array([0.0, 0.0, 2.6], np.float32))  # the head ~180 px tall
    crown = [render_control(Driver(a), rest, K, 512, 512).alpha[:200] > 0.5 for a in (full.avatar, small)]
    iou = float((crown[0] & crown[1]).sum() / (crown[0] | crown[1]).sum())
    assert iou > 0.9, f"the small photo's crown overlaps the full-size one's by IoU {iou:.3f}"


def test_edge_on_rim_shows_its_made_up_colour_from_the_photos_camera_only():
    """builder.edge_on_sh through avatar.sh_basis (what Driver evaluates): a disc seen from the photo's camera (at
    |cos| = facing to its normal) shows the refined colour; seen (1 - facing) / (1 + floor) more squarely, that colour
    less the made-up part; face-on, less (1 + floor) x it."""
    from gaussian_head_ros.core.avatar import sh_basis
    from gaussian_head_ros.core.reconstruct.builder import edge_on_sh

    rng = np.random.default_rng(0)
    n = 300
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    side = np.cross(axis, rng.normal(size=(n, 3)))
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    facing = rng.uniform(0.05, 0.5, n)
    colors, made_up = rng.uniform(0.2, 0.8, (n, 3)), rng.uniform(-0.1, 0.1, (n, 3))

    def seen_at(u):  # unit view directions (camera -> disc) at |cos| u to the normal, on its front
        return -u[:, None] * axis + np.sqrt(1 - u * u)[:, None] * side

    sh = edge_on_sh(colors, made_up, axis, facing, floor=0.5)
    assert sh.shape == (n, 4, 3)
    for u, want in ((facing, colors), (facing + (1 - facing) / 1.5, colors - made_up),
                    (np.ones(n), colors - 1.5 * made_up)):
        shown = 0.5 + np.einsum("nk,nkc->nc", sh_basis(seen_at(u), 1), sh)
        assert np.abs(shown - want).max() < 1e-5
    assert edge_on_sh(colors, 0 * made_up, axis, facing, 0.5).shape == (n, 1, 3)  # nothing made up: DC only


def test_a_turned_cheek_has_no_light_seam_where_the_photo_ends(results):
    """The photo layer's discs along business_person's cheek silhouette face sideways (|cos| to the photo's camera
    ~0.25): in the rest render they hardly show, and the colour refinement took them up to 0.08 lighter to make up.
    Turned and tilted (sadtalker f36: yaw 21, pitch up) they are seen face-on: a light seam down the cheek ~40 px
    inside its outline on every portrait (seam11). That made-up part is now seen from the photo's camera only (SH
    band 1, builder.edge_on_sh). A light line (brighter than both sides 4 px away by 0.02) in 40 % of the cheek's
    rows before, 13 % now; the photo's own view unchanged (<= 1/255)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    a = results["business_person.png"].avatar
    lum = source_view(a, 30, -15, background=(0.0, 0.0, 0.0), backend="cpu").mean(-1)
    ridge = np.minimum(lum[:, 4:-4] - lum[:, :-8], lum[:, 4:-4] - lum[:, 8:])[200:320, 276:336]  # x 280..340
    light = (ridge.max(1) > 0.02).mean()
    assert light < 0.25, f"a light line in {light:.0%} of the turned cheek's rows"


def test_a_wide_open_mouth_has_no_red_blur_beside_its_corners(results):
    """The thin triangles round the mouth's corners stretch 4x at jawOpen 0.3 and 11x at 0.9; their discs (the lips'
    edge red) grew with them into a red blur over business_person's cheeks beside her open mouth (session 36, by eye).
    Now a bound Gaussian grows by at most deform.MAX_BOUND_GROWTH. Share of the boxes beside each mouth corner (the
    reader's 61 / 291 on the rest render; 0.05-0.4 mouth widths out, +-0.3 high) redder (r / mean rgb) than the rest
    render's 95th percentile there + 0.05, at jawOpen 0.9: 0.186 / 0.152 before, 0.007 / 0.004 now."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.render import rasterize

    av = results["business_person.png"].avatar
    cam = av.source_camera
    fx, fy, cx, cy = np.asarray(cam.intrinsics, np.float64)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)
    d = Driver(av)

    def render(jaw_open):
        p = d.drive(FaceControl(blendshape_names=["jawOpen"], blendshapes=np.array([jaw_open], np.float32)))
        return np.clip(rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, np.asarray(cam.viewmat, np.float32),
                                 K, cam.size[0], cam.size[1]).image, 0, 1)

    rest, wide = render(0.0), render(0.9)
    with FaceReader(str(shared("models", "face_landmarker.task")), video=False) as reader:
        lm = reader.read((rest * 255 + 0.5).astype(np.uint8)).landmarks_px
    width = float(np.linalg.norm(lm[291, :2] - lm[61, :2]))
    shares = []
    for corner, side in ((lm[61, :2], -1), (lm[291, :2], 1)):
        x0, x1 = sorted([corner[0] + side * 0.05 * width, corner[0] + side * 0.4 * width])
        box = (slice(int(corner[1] - 0.3 * width), int(corner[1] + 0.3 * width)), slice(int(x0), int(x1)))
        red0, red1 = (im[box][..., 0] / np.maximum(im[box].mean(-1), 1e-3) for im in (rest, wide))
        shares.append(float(np.mean(red1 > np.percentile(red0, 95) + 0.05)))
    assert max(shares) < 0.05, f"red beside the open mouth's corners: {np.round(shares, 3)}"


def test_a_slightly_turned_cheek_has_no_light_line_beside_its_outline(results):
    """The discs next to the 1 px silhouette matte (MeshFitConfig.edge_band_px) see the photo edge-on; the refinement
    lifted them up to +0.17 luma (90th percentile) and that share fades out with the view only by a 30-40 deg turn
    (view_rim_*): turned 5 deg, business_person's image-right cheek showed a light line 2-6 px inside its outline (and
    under tpsmm_driving frame 42). Now the refinement moves them by at most rim_refine_limit. Rows of the cheek
    (230-330 of the 512 view) whose luma 2-8 px inside the outline rises 0.03 above both sides: 36 % before, 6 %
    now."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    im = source_view(results["business_person.png"].avatar, 5, 0, background=(0.0, 0.0, 0.0), backend="cpu")
    alive, lum = im.max(-1) > 0.05, im.mean(-1)
    lit = []
    for y in range(230, 330):
        x0 = np.flatnonzero(alive[y])[-1]  # the image-right outline
        prof = lum[y, x0 - np.arange(14)]  # from the outline inwards
        lit.append(max(prof[k] - max(prof[k - 2], prof[k + 3]) for k in range(2, 9)) > 0.03)
    assert np.mean(lit) < 0.2, f"a light line beside the cheek's outline in {np.mean(lit):.0%} of its rows"


def test_a_turned_cheek_shows_skin_not_the_hair_behind_it(results):
    """business_person's cheek is the silhouette against a white background: its outermost pixels are a matte
    (half transparent) and turned 30 deg they lie mid-cheek. Behind them the wall took the hair colour (the sides
    above the mouth are hair) and the completed cheek beyond left gaps: a dark, jagged seam with flecks down the
    cheek (dark pixels in the cheek box: 42 % before, 3 % now). The box ends where the cheek does: the side
    behind it turns away from the light and darkens (completion.SideLook: 39 % of x 300-350 below 0.4, 4 % of
    x 300-320)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["business_person.png"].avatar, 30, 0, background=(0.0, 0.0, 0.0), backend="cpu")
    box = img[200:300, 300:322]  # the turned cheek, between the eye's corner and the jaw
    alive = box.max(-1) > 0.02
    assert alive.mean() > 0.9
    dark = (box.mean(-1) < 0.4) & alive
    assert dark.sum() < 0.1 * alive.sum(), f"{dark.sum()} of {alive.sum()} cheek pixels dark"


def test_a_turned_cheek_shows_no_pale_patch_under_the_hair(results):
    """The hidden side behind business_person's far cheek (the silhouette against a white background) took the face
    rim's colours up into the ear's rows, where the far colour behind it is her dark hair within 8 mm: turned 35 deg
    a pale skin-to-grey patch stood under her hair beside the cheek (the box, rows 200-228 x 322-345 of the 512 view:
    mean luma 0.46 x the face's on main 9c6353e, 282 of 696 pixels above 0.45; 0.31 x and 125 now). There the side is
    the far colour (MeshFitConfig.ear_far_from's ear rows, the eyes' to the nose base's). The rim is as light 4 px
    inside her outline as 20 px inside (luma 0.84-0.86): not the backdrop's light. obama_speech's side below the nose
    base (his rim-lit cheek turned -35 deg) keeps the face rim: (0.63, 0.41, 0.31) on main and now."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    luma = np.array([0.299, 0.587, 0.114])
    a = results["business_person.png"].avatar
    black, white = (source_view(a, 35, 0, size=512, background=(b, b, b), backend="cpu") for b in (0.0, 1.0))
    alpha, lum = 1 - (white - black).mean(-1), black @ luma
    box, face = (slice(200, 229), slice(322, 346)), (slice(240, 280), slice(250, 300))
    assert alpha[box].min() > 0.9, "the box is not on the turned head"
    assert lum[200:229, 295:305].mean() > 0.7, "left of the box is not the cheek"
    ratio = float(lum[box].mean() / lum[face].mean())
    pale = int((lum[box] > 0.45).sum())
    assert ratio < 0.38 and pale < 200, f"a pale patch beside the turned cheek: luma {ratio:.2f} x the face's, {pale} px"
    cheek = source_view(results["obama_speech.jpg"].avatar, -35, 0, size=512, background=(0.0, 0.0, 0.0),
                        backend="cpu")[210:300, 170:215].reshape(-1, 3).mean(0)
    assert cheek[0] > 0.55 and cheek[0] > 1.8 * cheek[2], f"obama_speech's turned cheek's side {cheek}: not his rim"


def test_a_cheek_seen_on_a_panel_has_no_crack_where_the_photo_matte_ends(results):
    """business_person's photo is turned: her image-right cheek is the silhouette against a white background, its
    outermost pixels a matte (edge_matte: discs as transparent as the photo's edge is mixed with the background) and
    the face completion starts on the triangles the photo does not show. The strip of cheek the photo sees only
    through that matte band was covered by neither: on a 1024x600 panel, at rest and turned, a thin crack ran down
    the cheek inside the jaw outline, the dark wall behind it showing as a streak (skin24 s24; grid25 s25). Face layer
    alone, pixels that a 7 px closing raises by > 0.25 in the cheek's box: main 46 / 119 at yaw 0 / 20 (34 / 100 at
    512), now 0."""
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.display import display_intrinsics
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.render import head_viewmat, rasterize

    a = results["business_person.png"].avatar
    driver, view, k = Driver(a), head_viewmat(0.6), display_intrinsics(30.0, 1024, 600)
    face = a.part == PART_FACE
    for yaw in (0.0, 20.0):
        c = FaceControl.rest()
        c.rotation = euler_to_quat(yaw, 0.0, 0.0).astype(np.float32)
        p = driver.drive(c, viewmat=view)
        alpha = rasterize(p.means[face], p.quats[face], p.scales[face], p.opacities[face],
                          np.ones((int(face.sum()), 3), np.float32), view, k, 1024, 600, background=(0.0, 0.0, 0.0),
                          backend="cpu").image[..., 0]
        ys, xs = np.nonzero(alpha > 0.5)
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        mid = (x0 + x1) // 2
        dip = cv2.morphologyEx(alpha, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)) - alpha  # thin cracks only
        inner = cv2.erode((alpha > 0.3).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        box = np.zeros_like(inner)  # the image-right cheek, from below the eyes to the jaw, off the nose and mouth
        box[y0 + (y1 - y0) * 45 // 100:y0 + (y1 - y0) * 85 // 100, mid + (x1 - mid) * 55 // 100:x1] = True
        n = int((inner & box & (dip > 0.25)).sum())
        assert n < 10, f"yaw {yaw}: {n} crack pixels in the cheek at 1024x600"


def test_a_completed_cheek_meets_the_photos_without_a_step(results):
    """The template cheek the photo does not show (beyond or behind business_person's left cheek silhouette) is
    completed. It took the mirror point's colour (the other cheek, shaded near its ear) or the skin colour
    extrapolated over the image: turned 35 deg, a darker stepped band and a light flat patch beside the photo's
    cheek (48 % of the box below 0.9 x the photo cheek's luminance before). It now carries the skin's light on over
    the template from where the photo shows it, with the mirror's detail (0.3 % now)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    lum = source_view(results["business_person.png"].avatar, 35, 0, background=(0.0, 0.0, 0.0), backend="cpu").mean(-1)
    photo_cheek = float(np.median(lum[218:262, 262:288]))  # the photo's cheek, turned towards the camera
    completed = lum[218:262, 292:322]  # the completed cheek beside it, towards the ear
    assert photo_cheek > 0.6
    dark = (completed < 0.9 * photo_cheek).mean()
    assert dark < 0.1, f"{dark:.0%} of the completed cheek darker than 0.9 x the photo's cheek ({photo_cheek:.2f})"


def test_the_hidden_side_below_the_hair_is_shaded_skin_not_the_hair(results):
    """trump_official turned 35 deg shows the head's hidden side beyond his far cheek. It took the white hair's
    colour from the hair down to the collar: a flat pale wall (median luminance 0.61 x the hair's in the box
    below the hair line). Below the hair the side is the skin turned from the light now (0.26)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["trump_official.png"].avatar, 35, 0, background=(0.0, 0.0, 0.0), backend="cpu")
    hair = float(np.median(img[60:100, 200:300].mean(-1)))  # the hair on top of his head
    box = img[236:296, 340:366]  # beyond the far cheek, between the ear's row and the jaw's
    alive = box.max(-1) > 0.02
    assert alive.mean() > 0.6 and hair > 0.5
    ratio = float(np.median(box[alive].mean(-1))) / hair
    assert ratio < 0.45, f"the side below the hair line: {ratio:.2f} x the hair's luminance"


def test_a_turned_necks_hidden_side_is_the_neck_skin_in_shade(results):
    """business_person turned 35 deg shows the hidden side of her neck beside the photo's, below the jaw and above the
    collar. It was a flat near-black grey (the skin in shadow never lighter than her dark hair; over it a pale wing of
    her background-lit cheek rim and white collar, blurred): median rgb (0.11, 0.11, 0.11), its chromaticity 0.017 from
    the hair's and 0.052 from her chin and neck skin's, at 0.13 x that skin's luminance. The neck going round is her
    jaw's skin turned from the light now (hidden_colours.neck_colours): (0.32, 0.27, 0.24), 0.007 from the skin's
    chromaticity and 0.050 from the hair's, at 0.33 x its luminance."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    res = results["business_person.png"]
    photo = res.photo.astype(np.float64) / 255

    def chroma(c):
        return np.asarray(c, np.float64) / max(float(np.sum(c)), 1e-6)

    r = photo.shape[0] / 512  # the boxes are of a 512 px view of the crop (the crop's size may change: crop23)
    skin = np.median(photo[round(295 * r):round(320 * r), round(240 * r):round(290 * r)].reshape(-1, 3), 0)  # her
    # chin and neck below the lower lip
    hair = np.median(photo[round(60 * r):round(100 * r), round(200 * r):round(300 * r)].reshape(-1, 3), 0)  # the
    # dark hair on top of her head
    assert skin @ LUMA > 0.6 and hair @ LUMA < 0.2
    img = source_view(res.avatar, 35, 0, size=512, background=(0.0, 0.0, 0.0), backend="cpu").astype(np.float64)
    box = img[320:350, 300:325].reshape(-1, 3)  # beside the photo's neck, between the jaw and the collar
    assert (box.max(-1) > 0.02).mean() > 0.9, "the box is not on the turned neck"
    c = np.median(box, 0)
    to_skin, to_hair = (float(np.linalg.norm(chroma(c) - chroma(r))) for r in (skin, hair))
    assert to_skin < 0.5 * to_hair, f"the hidden neck rgb {np.round(c, 3)}: chromaticity {to_skin:.3f} from the skin's, {to_hair:.3f} from the hair's"
    shade = float(c @ LUMA / (skin @ LUMA))
    assert 0.25 < shade < 0.8, f"the hidden neck at {shade:.2f} x the skin's luminance (shaded skin, neither black nor pale)"


@pytest.mark.parametrize("yaw, pitch, before", [(25, 0, 793), (25, -20, 1324)])
def test_a_turned_jaw_and_neck_show_no_grey_band_beside_them(results, yaw, pitch, before):
    """business_person turned 25 deg (and chin up 20: sadtalker frame 37) showed a grey band beyond her far jaw and neck
    down to the collar (issue 11, neck34): the hidden side behind the jaw took her dark hair's colour from 2 cm back
    (the hair rule between the ear's rows and the neck's, which began only at the nose base), and beside the neck the
    skin at a fixed half its light, darkened again towards the back (0.33 x the face's luminance). The side behind a
    skin outline is the jaw and neck going round from the ear's rows down (hidden_colours.neck_colours), at the shade
    the photo shows on that outline, darkening towards the back. Drawn pixels darker than 0.45 x the face's skin in rows
    250-320 x 300-400 of the 512 px view (the cheek, the side beyond it, the neck), more than 10 px inside the row's
    drawn outline: `before` on main caf3a30 (1563 / 2094 counting the outline's last 10 px too). Those last pixels are
    left out since the side goes on darkening to its outline (turn55, MeshFitConfig.neck_far_to_back: a real side
    turned from the light is darkest there; 701 / 964 of all, 41 / 194 of these, then). 96 / 321 now: the raised jaw's
    underside beside the neck lies in shadow (neck56, MeshFitConfig.neck_underside; 0.9 of the way to the side's far
    colour, as 1 by eye, which counted 134 / 394)."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["business_person.png"].avatar, yaw, pitch, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    skin = float(np.median(img[250:290, 250:300].reshape(-1, 3) @ LUMA))  # her far cheek
    assert skin > 0.6, "the cheek box is not on her skin"
    region = img[250:320, 300:400]
    drawn = region.max(-1) > 0.02
    assert drawn.sum() > 2500, f"only {drawn.sum()} px drawn: not the turned jaw and neck"
    inside = np.zeros_like(drawn)  # more than 10 px inside each row's drawn outline
    for k in range(region.shape[0]):
        row = np.flatnonzero(img[250 + k, 280:440].max(-1) > 0.02) + 280
        if len(row):
            inside[k, :max(0, row[-1] - 10 - 300)] = True
    dark = int((drawn & inside & (region @ LUMA < 0.45 * skin)).sum())
    assert dark < 0.25 * before, f"{dark} grey px beside the turned jaw and neck ({before} on caf3a30)"


def _side_beyond_a_turned_jaw(avatar, yaw, pitch):
    """The 512 px view of business_person's avatar turned yaw / pitch on black -> (luminance [512, 512] over her far
    cheek's, [(y, i0, i1)] the rows 270-330 (every 2nd) beside the jaw and neck where a side of 16 px or more shows:
    from i0, past the face's edge (luminance above 0.8), to i1, the drawn outline)."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(avatar, yaw, pitch, size=512, background=(0.0, 0.0, 0.0), backend="cpu").astype(np.float64)
    skin = float(np.median(img[250:290, 250:300].reshape(-1, 3) @ LUMA))  # her far cheek
    assert skin > 0.6, "the cheek box is not on her skin"
    lum = img @ LUMA / skin
    rows = []
    for y in range(270, 331, 2):
        drawn = np.flatnonzero(img[y, 280:440].max(-1) > 0.02) + 280
        face = np.flatnonzero(lum[y, 280:440] > 0.8) + 280
        if len(drawn) and len(face) and drawn[-1] - face[-1] - 1 >= 16:
            rows.append((y, face[-1] + 1, drawn[-1]))  # the side: past the face's edge out to the drawn outline
    return lum, rows


@pytest.mark.parametrize("yaw, pitch", [(25, -20), (25, 0)])
def test_the_side_beyond_a_turned_jaw_goes_round_into_shade(results, yaw, pitch):
    """business_person driven by sadtalker, frame 37 (yaw 22, chin up 20), showed beyond her far jaw a pale slab down
    to the collar, one flat level of skin from the jaw to its straight outer edge (issue 11, slab35): a turned view sees
    the back half of the hidden side there (its front behind the cheek), all of it past side_shade's 5 cm, at one
    level. A jaw and neck going round from the light darken towards the far outline (MeshFitConfig.neck_far_dark from
    neck_far_from_m). Per row of the 512 px view beside the jaw and neck (rows 270-330), the side's luminance 4-8 px in
    from its far outline over that 0-4 px past the face's edge: median 0.86 (yaw 25 chin up 20) / 0.88 (yaw 25) on
    41b872a; 0.70 / 0.73 now."""
    lum, rows = _side_beyond_a_turned_jaw(results["business_person.png"].avatar, yaw, pitch)
    ratios = [lum[y, i1 - 8:i1 - 3].mean() / lum[y, i0:i0 + 4].mean() for y, i0, i1 in rows]
    assert len(ratios) >= 10, f"only {len(ratios)} rows show a side beyond the jaw"
    shade = float(np.median(ratios))
    assert shade < 0.8, f"the side beyond the jaw at its outline {shade:.2f} x its level by the face: a flat slab"


@pytest.mark.parametrize("yaw, pitch", [(40, -20), (25, -20)])
def test_the_side_beyond_a_turned_jaw_shades_on_to_its_outline(results, yaw, pitch):
    """business_person turned 25-40 deg (sadtalker frame 37: yaw 22, chin up 20) showed beside her far jaw and down
    her neck a flat strip, one even level from its middle to its outline (turn55, lead's session 54): the wall columns
    there are 5-8 cm deep, a turned view sees them from ~3.5 cm back, and the neck's far side (neck_far_dark) and
    side_shade both stopped changing 5 cm back. The far side now reaches its darkest at each column's back
    (MeshFitConfig.neck_far_to_back). Per row of the 512 px view beside the jaw and neck (rows 270-330), the side's
    luminance 3-8 px in from its drawn outline over that at its middle (half-way from the face's edge): median 1.00 /
    0.99 (yaw 40 / 25, chin up 20) on f2ee460; 0.82 / 0.77 now. And no lighter in the middle than it was (0.53 / 0.53
    x her cheek then, 0.49 / 0.50 now)."""
    lum, rows = _side_beyond_a_turned_jaw(results["business_person.png"].avatar, yaw, pitch)
    outer = [lum[y, i1 - 8:i1 - 3].mean() for y, i0, i1 in rows]
    middle = [lum[y, (i0 + i1) // 2 - 2:(i0 + i1) // 2 + 3].mean() for y, i0, i1 in rows]
    assert len(outer) >= 10, f"only {len(outer)} rows show a side beyond the jaw"
    flat = float(np.median(np.asarray(outer) / np.asarray(middle)))
    assert flat < 0.9, f"the side beyond the jaw by its outline {flat:.2f} x its middle: one flat level"
    assert np.median(middle) < 0.56, f"its middle {np.median(middle):.2f} x the cheek: lighter than it was"


@pytest.mark.parametrize("yaw, under, neck, most", [(40, (292, 314, 266, 300), (322, 342, 266, 300), 1.0),
                                                     (25, (294, 314, 282, 306), (322, 342, 282, 306), 1.0)])
def test_a_raised_turned_jaws_underside_is_no_lighter_than_the_neck_below_it(results, yaw, under, neck, most):
    """business_person turned 25-40 deg with the chin up 20 (sadtalker frame 37: yaw 22, chin up 20) showed under her
    far jaw a light patch, lighter than the neck below it (neck56, left by turn55): the wall columns along the jaw's
    underside kept the side's front colour (the lit rim's) for their first 3 cm, while the neck's side beside and
    below it darkens on to its outline. A jaw's underside is in its shadow: the side takes its far colour where its
    outline faces down (MeshFitConfig.neck_underside, SideLook.underside). The median luminance of a box under the jaw
    over that of a box of neck below it (same columns, the 512 px view on black): 1.33 / 1.26 (yaw 40 / 25) on
    b8052f5; 0.95 / 0.90 now."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["business_person.png"].avatar, yaw, -20, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    lum = img @ LUMA
    boxes = [lum[y0:y1, x0:x1] for y0, y1, x0, x1 in (under, neck)]
    assert all((b > 0.1).mean() > 0.95 for b in boxes), "a box is not on her jaw's underside or neck"
    ratio = float(np.median(boxes[0]) / np.median(boxes[1]))
    assert ratio < most, f"the raised jaw's underside {ratio:.2f} x the neck below it: a light patch under the jaw"


def _flag_red(img: np.ndarray) -> np.ndarray:
    """[H, W] bool: the pixels of img [H, W, 3] (rgb 0..1) in obama_speech's flag's red (rgb 0.61 0.16 0.20, red over
    0.3, green under 0.6 x red, blue no less than 0.95 x green: not his skin, 0.66 0.41 0.29)."""
    return (img[..., 0] > 0.3) & (img[..., 1] < 0.6 * img[..., 0]) & (img[..., 2] > 0.95 * img[..., 1])


@pytest.mark.parametrize("yaw, pitch, before", [(-25, 0, 458), (-15, 0, 432), (-25, -15, 392)])
def test_a_turned_jaw_shows_no_red_streak_from_the_flag_behind_it(results, yaw, pitch, before):
    """obama_speech stands before red and white striped flags, and his person mask takes in 6-7 px of a red stripe
    beside his right jaw (rgb 0.61 0.16 0.20, pure flag red, inside the mask). Turned to show that side (sadtalker
    frame 37, lp_d18 frame 150), the hidden side behind the outline, the photo layer's edge-on discs, the face
    completion and the skin under the chin took it: a pink-red streak down his jaw (lead, session 56). The
    backdrop's colour kept inside the outline moves to his own skin's in what a turned view sees
    (backdrop_rim.backdrop_share). Flag-red pixels in the box beside his jaw, above the collar and left of the mouth
    (rows 150-345, columns 100-215 of the 512 px view): `before` (MeshFitConfig.backdrop_rim_px 0, as main c4b343c);
    211 / 279 / 171 now. What stays is the photo layer's discs on the stripe that face the photo's camera too
    squarely for their colour to be its alone (|cos| over MeshFitConfig.view_rim_facing's 0.5), the face
    completion's, which the photo's own view sees through the matte band, and the skin under the chin's (moved too:
    127 / 218 / 119, but that skin's grain below its test's bound) (rim57)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_speech.jpg"].avatar, yaw, pitch, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    box = img[150:345, 100:215]
    # (yaw -25 / -15 / -25 pitch -15: drawn 0.59 / 0.51 / 0.59 of it with the far half's mirrored ear bulging out
    # behind the jaw; 0.53 / 0.47 / 0.53 since ear61, the red as before: 18 / 40 / 19)
    assert (box.max(-1) > 0.02).mean() > 0.4, "the box is not on his turned jaw"
    red = int(_flag_red(box).sum())
    assert red < 0.7 * before, f"{red} flag-red pixels beside the turned jaw ({before} before)"


@pytest.mark.parametrize("yaw, before", [(-40, 110), (-25, 149)])
def test_a_turned_ear_shows_no_patch_of_the_white_backdrop_beside_it(results, yaw, before):
    """business_person's ear and jaw meet her white backdrop in the photo, and the outline's pixels there mix it in.
    Turned to show that side, the hidden side behind them took that white: a pale grey patch under her ear (not a
    backdrop's red, the same rule: backdrop_rim.backdrop_share). Backdrop-white pixels (brightest channel over 0.6,
    saturation under 0.15; her skin's is over 0.2) in rows 100-290, columns 100-260 of the 512 px view (her ear,
    jaw and the side of her neck, above the collar): `before` (MeshFitConfig.backdrop_rim_px 0, as main c4b343c);
    32 / 61 now."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["business_person.png"].avatar, yaw, 0, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    box = img[100:290, 100:260]
    assert (box.max(-1) > 0.02).mean() > 0.5, "the box is not on her turned head"
    top = box.max(-1)
    pale = int(((top > 0.6) & ((top - box.min(-1)) / np.maximum(top, 1e-3) < 0.15)).sum())
    assert pale < 0.5 * before, f"{pale} backdrop-white pixels by the turned ear ({before} before)"


@pytest.mark.parametrize("yaw", [40, -40])
def test_a_raised_turned_neck_has_no_light_rim_at_its_outline(results, yaw):
    """business_person turned 40 deg with the chin up 20 showed a thin light line along her neck's outline (neck56, left
    by turn55): there a turned view sees past the wall columns' back ends the back grid's discs, which lie deeper a few
    pixels in and kept the rim's colours while the columns darken on to their back (MeshFitConfig.neck_far_to_back).
    The back behind that side now takes the colour its columns end in (SideLook.back_end). Per row 260-340 (every 2nd)
    of the 512 px view on black, the brightest luminance of the last 6 drawn px at the neck's far outline less the
    darkest of the 7 px before them: median 0.135 / 0.084 (yaw 40 / -40) on b8052f5; -0.005 / 0.003 now."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["business_person.png"].avatar, yaw, -20, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    lum = img @ LUMA
    rises = []
    for y in range(260, 341, 2):
        drawn = np.flatnonzero(img[y].max(-1) > 0.02)
        drawn = drawn[drawn >= 256] if yaw > 0 else drawn[drawn < 256]
        if not len(drawn):
            continue
        seg = lum[y, drawn[-1] - 12:drawn[-1] + 1] if yaw > 0 else lum[y, drawn[0]:drawn[0] + 13][::-1]
        rises.append(seg[-6:].max() - seg[:-6].min())
    assert len(rises) >= 30, f"only {len(rises)} rows show the turned neck's outline"
    rise = float(np.median(rises))
    assert rise < 0.03, f"a light rim {rise:.3f} brighter than the side inside it at the raised, turned neck's outline"


@pytest.mark.parametrize("pitch, box", [(0, (330, 346, 195, 255)), (-15, (298, 318, 185, 250))])
def test_a_raised_chins_underside_is_shaded_skin_not_the_collar_grey(results, pitch, box):
    """obama_speech's chin raised (driven by sadtalker, ~7 deg up at frames 45-58; here the rest pose, whose chin
    is higher than the photo's open jaw, and 15 deg up) shows what is behind the chin from below: the head's back
    grid (hidden_colours.neck_colours). It kept the silhouette rim's colours blurred, his white collar and dark suit: a
    grey patch with white squiggles between the chin and the collar, 51 % (rest) and 14 % (15 deg up) of the box
    under the chin grey (saturation < 0.2). It is his jaw's skin in shadow now: 0.2 % and 2 %."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_speech.jpg"].avatar, 0, pitch, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    y0, y1, x0, x1 = box  # under the chin, above the collar, in the 512 px view
    b = img[y0:y1, x0:x1].reshape(-1, 3)
    assert (b.max(-1) > 0.05).mean() > 0.9, "the box is not on the head"
    grey = float(((b.max(-1) - b.min(-1)) / np.maximum(b.max(-1), 1e-6) < 0.2).mean())
    assert grey < 0.06, f"{grey:.1%} of the raised chin's underside grey (the collar's and the suit's rim, blurred)"


def test_a_closed_mouth_seen_from_under_the_chin_shows_skin_not_the_cavity(results):
    """obama_speech's head 25 deg chin up: the jaw had no underside, and the mouth interior behind the closed lips
    (mouth.mouth_interior's dark-red cavity and tongue, the teeth's dots) showed from below through it, a maroon
    patch with white dots left of the chin: 26 % of the box under the chin maroon (blue >= green, red > 1.5 x
    green; the jaw's skin in shade is brown, green > blue). The jaw's underside (mouth.jaw_floor, the jaw's skin in
    shade) covers it now: 0.2 %."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_speech.jpg"].avatar, 0, -25, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    b = img[268:292, 180:240].reshape(-1, 3)  # under the chin, in the 512 px view
    assert (b.max(-1) > 0.05).mean() > 0.9, "the box is not on the head"
    maroon = float(((b[:, 2] >= b[:, 1]) & (b[:, 0] > 1.5 * b[:, 1])).mean())
    assert maroon < 0.05, f"{maroon:.1%} of the raised chin's underside maroon (the mouth's cavity seen from below)"


def test_the_skin_under_the_chin_stays_below_the_closed_chin(results):
    """rest_pose.under_chin's skin (what obama_speech's talking jaw hid and the rest's closed chin uncovers, 604 discs)
    is PART_UNDER_CHIN, out of the template's falloff: the rest pose leaves it below the chin where it was built. As
    static Gaussians the falloff carried 98 % of them up into the chin (chinup26): there they showed as dots under a
    raised chin and, the head turned 35 deg to the image left (turn22's camera: 384 px, fov 12, 2 m), as dark navy
    blotches under the jaw, the suit seen where they left the band bare: pixels darker than 0.15 in the box under
    the chin 137 before, 53 now."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_UNDER_CHIN
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics

    r = results["obama_speech.jpg"]
    a = r.avatar
    assert int((a.part == PART_UNDER_CHIN).sum()) == r.info["under_chin"] > 300
    size, k = 384, default_intrinsics(384, 384, 12.0)
    c = FaceControl.rest()
    c.rotation = euler_to_quat(-35.0, 0.0, 0.0).astype(np.float32)
    c.translation = np.array([0.0, 0.0, 2.0], np.float32)
    img = np.clip(render_control(Driver(a), c, k, size, size).image, 0, 1)
    p = quat_to_matrix(c.rotation) @ a.template_vertices[lmk.CHIN].astype(np.float64) + c.translation
    ci, cj = int(k[1, 1] * p[1] / p[2] + k[1, 2]), int(k[0, 0] * p[0] / p[2] + k[0, 2])
    box = img[ci - 12:ci + 20, cj - 30:cj + 30] @ np.array([0.299, 0.587, 0.114])
    dark = int((box < 0.15).sum())
    assert dark < 90, f"{dark} dark pixels under obama_speech's turned jaw (the suit through the skin under the chin)"


def test_the_jaws_underside_stays_behind_the_chin_as_the_head_tilts_back(results):
    """The jaw's underside (mouth.jaw_floor: the jaw's skin in shade, turning with the jaw's hinge) lies behind the
    chin's skin, which follows the template. business_person driven by sadtalker (tracked from frame 0, as the table
    does), frames 40-59 (her head tilts back): the pixels where the floor shows (the render with it against the render
    without it, summed rgb difference > 0.15) were 1738 in all at 5 mm up / 8 mm in from the jaw's edge (d89f283;
    185 at frame 47: a dark flick along her jaw line), 45 at 8 / 12 mm (7d30cf0), 218 with its discs 5 mm apart
    (9208fbc: at the jaw's corner against the dark neck, not to be seen at 3x)."""
    from gaussian_head_ros.core.avatar import PART_JAW_FLOOR
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import EvalConfig, render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    a = results["business_person.png"].avatar
    floor = a.part == PART_JAW_FLOOR
    assert floor.sum() > 50, "no jaw floor"
    with_floor = Driver(a)
    opacities = a.logit_opacities.copy()
    a.logit_opacities[floor] = -30.0
    try:
        without = Driver(a)
    finally:
        a.logit_opacities[:] = opacities
    frames = read_frames(str(shared("driving", "sadtalker_WDA_KatieHill_000.mp4")), max_frames=60)
    cfg = EvalConfig()
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, cfg.fov_deg)
    shown = []
    with FaceTracker(TrackerConfig(fov_deg=cfg.fov_deg)) as tracker:
        for i, f in enumerate(frames):
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if i < 40 or c is None or not c.face_detected:
                continue
            diff = np.abs(np.asarray(render_control(with_floor, c, K, w, h).image, np.float32)
                          - np.asarray(render_control(without, c, K, w, h).image, np.float32)).sum(-1)
            shown.append(int((diff > 0.15).sum()))
    assert len(shown) >= 15, f"only {len(shown)} frames tracked"
    assert sum(shown) < 400, f"the jaw's underside shows below the chin in frames 40-59: {shown} px"


def test_the_skin_under_a_raised_chin_takes_no_collar_white(results):
    """obama_speech at rest (the rest pose's chin higher than the photo's open jaw) shows the under-chin skin
    (rest_pose.under_chin) at the jaw's corner. Its colours came from the band just below the photo's chin, which
    runs into his white collar there: light dots, 21 % of the box over 0.5 luminance (with the back under the chin
    already skin; 62 % on main, the grey back too). From the band's neck-skin pixels only now: 3 %."""
    from gaussian_head_ros.core.colour import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_speech.jpg"].avatar, 0, 0, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)
    box = img[325:340, 192:205] @ LUMA  # under the chin at the jaw's left corner, in the 512 px view
    assert (box > 0.05).mean() > 0.9, "the box is not on the head"
    light = float((box > 0.5).mean())
    assert light < 0.1, f"{light:.0%} of the skin under the jaw's corner light (the collar's white)"


def test_the_skin_under_a_closed_chin_has_the_skins_grain(results):
    """MeshFitConfig.under_chin_detail: obama_speech at rest (his photo's talking jaw closed) shows the under-chin skin
    (rest_pose.under_chin) below the chin; its colour alone, the neck's band filled smoothly, drew a flat brown plate
    with straight sides there, all the time his avatar rests. With the photo's own fine detail added there, the fine
    detail of the rendered luma (less its 2 px blur) where that skin shows has 0.51 x the spread it has on the chin
    just above it (0.43 without; bound 0.47). Main 94faf56 0.478 (0.358 without), but at the skin's left tip beside
    the jaw's corner (8 columns of 57) the flag's red that his mask took in below the jaw came in through the neck
    band's colours as a purple smear: its spread there 0.0127, 0.0142 with the detail off (not the skin's grain);
    over the columns past it 0.439. With that stripe in his own colour (backdrop_rim.backdrop_kept) 0.425, 0.267
    without the detail, 0.433 past the tip: bound 0.40 (rim60, /tmp/rim60/grain_evidence.png)."""
    from gaussian_head_ros.core.avatar import PART_UNDER_CHIN
    from gaussian_head_ros.core.colour import LUMA
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    a = results["obama_speech.jpg"].avatar
    K, w, h = source_intrinsics(a)
    view = np.asarray(a.source_camera.viewmat, np.float32)
    p = Driver(a).drive(FaceControl())

    def draw(colors):
        return rasterize(p.means, p.quats, p.scales, p.opacities, colors, view, K, w, h, backend="cpu").image

    img, marked = draw(p.colors), p.colors.copy()
    marked[a.part == PART_UNDER_CHIN] = (1.0, 0.0, 1.0)
    shown = (np.abs(draw(marked) - img).sum(-1) > 0.3).astype(np.uint8)
    shown = cv2.erode(shown, np.ones((5, 5), np.uint8)).astype(bool)  # inside it, not its rim
    assert shown.sum() > 300, f"the skin under the chin shows on {shown.sum()} px"
    lum = img @ LUMA
    fine = lum - cv2.GaussianBlur(lum, (0, 0), 2.0)
    ys, xs = np.nonzero(shown)
    chin = np.zeros_like(shown)
    chin[ys.min() - 25:ys.min() - 5, xs.min():xs.max()] = True  # the chin's skin just above it
    ratio = float(fine[shown].std() / fine[chin].std())
    assert ratio >= 0.40, f"the skin under the chin {ratio:.2f} x as grainy as the chin above it (a flat plate)"


@pytest.mark.parametrize("name", ["obama_official.jpg", "lp_d8_man_glasses.jpg", "lp_d9_woman_turned.jpg"])
def test_the_back_of_the_head_curves_in_to_the_nape(results, name):
    """Seen in profile, the back of the head went straight down from the crown to the collar (a helmet): the
    hidden back stood about as far behind at the chin's row as at the occiput (obama_official 1.7 cm further
    back, lp_d8 0.5 and lp_d9 0.3 cm nearer). A head curves in below the occiput to the back of the neck, some
    2-4 cm; now 1.6, 3.9 and 4.8 cm (camera depth: less on a photo pitched or turned)."""
    from gaussian_head_ros.core import landmarks as lmk

    a = results[name].avatar
    m, v = a.means, a.template_vertices
    eye, chin = float(v[[lmk.EYE_OUTER_R, lmk.EYE_OUTER_L], 1].mean()), float(v[lmk.CHIN, 1])

    def reach(y0, y1):  # the farthest-back Gaussian (head frame z) near the midline between rows y0 and y1
        s = (m[:, 1] > y0) & (m[:, 1] < y1) & (np.abs(m[:, 0]) < 0.03)
        return float(m[s, 2].max())

    dip = reach(eye - 0.03, eye + 0.01) - reach(chin - 0.004, chin + 0.004)
    assert 0.012 < dip < 0.06, f"the nape {100 * dip:.1f} cm in front of the occiput"


def test_a_turned_photos_far_half_is_as_wide_as_its_near_half(results):
    """obama_speech's head is turned 13.5 deg from his camera: the photo sees his near half (his left ear and the hair
    behind it) and of the far half only its outline. The proxy's hidden back, the silhouette's inflation about the
    camera's axis, curved in early behind the far outline: turned to show that side, a flat wall stood where the far
    ear and skull should be (slab35). In the ear's rows (head-frame y -5..+1 cm), 5-8 cm behind the head origin, the far
    half reached 7.7 cm from the mid-sagittal plane, the near half 9.8 cm (0.79 x). The far half's back is now as deep
    as the near half's mirror image along the rays through the person (completion.mirrored_back), but for the near
    ear's outline, whose back (the proxy's, as deep as the head's) stood out 9.8 cm and mirrored drew a second ear
    behind the far one's place (ear61): there the far half is as wide as its skull above and below, the near half's
    above the ear (y -8..-5 cm) 8.2 cm: the far half 8.4 cm (9.7 with the near ear mirrored). A frontal photo keeps
    its proxy (MeshFitConfig.far_side_turn_deg: business_person, turned 6.8 deg, 8.5 / 8.4 cm)."""
    from gaussian_head_ros.core.avatar import PART_TORSO

    def reach(name, y0=-0.05, y1=0.01):  # (near, far) metres from the mid-sagittal plane, 5-8 cm behind the origin
        a = results[name].avatar
        m = a.means
        vm = np.asarray(a.source_camera.viewmat, np.float64)
        side = np.sign((-vm[:3, :3].T @ vm[:3, 3])[0])  # the camera's side: the near half
        box = (m[:, 1] > y0) & (m[:, 1] < y1) & (m[:, 2] > 0.05) & (m[:, 2] < 0.08) & (a.part != PART_TORSO)
        return float((side * m[box, 0]).max()), float((-side * m[box, 0]).max())

    skull = reach("obama_speech.jpg", -0.08, -0.05)[0]  # the near half above the ear
    near, far = reach("obama_speech.jpg")
    assert far > 0.95 * skull, f"the far half {100 * far:.1f} cm wide behind the ear, the near skull {100 * skull:.1f} cm"
    near, far = reach("business_person.png")
    assert 0.95 * near < far < 1.1 * near, f"a frontal photo's far half {100 * far:.1f} cm, its near {100 * near:.1f} cm"


def test_a_turned_photos_far_side_has_an_ear_in_the_near_ears_colours(results):
    """obama_speech's far half, which the photo does not show, was the rim's hair colour all round behind the far cheek
    in the ear's rows (head-frame y -4..0 cm): of its hidden side's Gaussians beyond 6 cm from the mid-sagittal plane,
    none nearer the skin's chromaticity than the hair's (0 of 280; 1 % of 476 with the far half widened alone). Where
    its mirror image lies just behind what the photo shows of the near half (his ear), it takes that colour at its own
    light (completion.mirrored_colours): 12 %, an ear beside the far cheek in a turned view."""
    from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC, sh_dc_to_rgb

    a = results["obama_speech.jpg"].avatar
    m, part, col = a.means, a.part, sh_dc_to_rgb(a.sh[:, 0]).astype(np.float64)
    vm = np.asarray(a.source_camera.viewmat, np.float64)
    side = np.sign((-vm[:3, :3].T @ vm[:3, 3])[0])  # the camera's side: the near half

    def chroma(c):
        return c / np.maximum(c.sum(-1, keepdims=True), 1e-6)

    skin = np.median(chroma(col[(part == PART_FACE) & (side * m[:, 0] > 0.02) & (np.abs(m[:, 1]) < 0.03)]), 0)
    hair = np.median(chroma(col[(part == PART_STATIC) & (m[:, 1] < -0.07) & (np.abs(m[:, 0]) < 0.03) & (m[:, 2] < 0)]), 0)
    far = (part == PART_STATIC) & (m[:, 1] > -0.04) & (m[:, 1] < 0) & (-side * m[:, 0] > 0.06) & (m[:, 2] > -0.01)
    k = chroma(col[far])
    share = float((np.linalg.norm(k - skin, axis=1) < np.linalg.norm(k - hair, axis=1)).mean())
    assert far.sum() > 100 and share > 0.06, f"{100 * share:.0f} % of the far side's {far.sum()} Gaussians skin-coloured"


def test_a_turned_photos_far_side_keeps_its_own_hair_colour_and_neck(results):
    """lp_s9_monalisa (turned 18.2 deg) has purple-brown hair on her near side and orange-brown on her far side (the
    painting's light). Taken onto the far half as the near half shows it, her far hair turned purple-blue in a turned
    view: of its hidden Gaussians in the head's rows beyond 6 cm from the mid-sagittal plane, 50 % had a blue
    chromaticity over 0.3 (0 % on 1dd1c98); the hair's colours are balanced to the far half's own
    (completion.mirrored_colours' hair_skin): 13 %. And below the chin, where the mirror of her near hair and shoulder
    stood out beside her neck as a pale strip 11.7 cm from the mid-sagittal plane (the near half 12.8, 6.7 on 1dd1c98),
    the far half is not deepened (from the nose base's row down to the chin's it fades out): 7.3 cm."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_STATIC, PART_TORSO, sh_dc_to_rgb

    a = results["lp_s9_monalisa.jpg"].avatar
    m, part, col = a.means, a.part, sh_dc_to_rgb(a.sh[:, 0]).astype(np.float64)
    vm = np.asarray(a.source_camera.viewmat, np.float64)
    side = np.sign((-vm[:3, :3].T @ vm[:3, 3])[0])  # the camera's side: the near half
    far = (part == PART_STATIC) & (m[:, 1] > -0.06) & (m[:, 1] < 0.04) & (-side * m[:, 0] > 0.06) & (m[:, 2] > 0)
    blue = float((col[far, 2] / np.maximum(col[far].sum(1), 1e-6) > 0.3).mean())
    assert far.sum() > 200 and blue < 0.25, f"{100 * blue:.0f} % of her far hair's {far.sum()} Gaussians purple-blue"
    chin = float(a.template_vertices[lmk.CHIN, 1])
    box = (m[:, 1] > chin) & (m[:, 1] < chin + 0.04) & (m[:, 2] > 0.03) & (part != PART_TORSO)
    near, far_x = float((side * m[box, 0]).max()), float((-side * m[box, 0]).max())
    assert far_x < 0.8 * near, f"beside her neck the far half {100 * far_x:.1f} cm out, the near half {100 * near:.1f} cm"


def _far_face_edge_step(avatar, yaw: float, pitch: float) -> tuple[float, int]:
    """The 512 px view of `avatar` turned yaw / pitch (degrees, from the photo's pose) on black: per row, the face
    part's (PART_FACE: the photo's face and its completion) outermost pixel on the far side (the left for yaw < 0),
    where the 5 px beyond it (2-6 px out) are drawn and not the face's -> (the median over those rows of the mean
    luminance 2-6 px inside that edge over that 2-6 px outside, the number of rows)."""
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat, matrix_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    K, w, h = source_intrinsics(avatar, 512)
    rot, view = photo_pose(avatar)
    control = FaceControl.rest()
    control.rotation = matrix_to_quat(rot @ quat_to_matrix(euler_to_quat(yaw, pitch, 0.0).astype(np.float64))).astype(
        np.float32)
    q = Driver(avatar).drive(control, viewmat=view)
    face_rgb = np.repeat((np.asarray(avatar.part) == PART_FACE).astype(np.float32)[:, None], 3, 1)
    img, face = (rasterize(q.means, q.quats, q.scales, q.opacities, c, view.astype(np.float32), K, w, h,
                           backend="cpu").image.astype(np.float64) for c in (q.colors, face_rgb))
    lum, drawn, face = img @ LUMA, img.max(-1) > 0.02, face[..., 0] > 0.5
    into = 1 if yaw < 0 else -1  # from the far edge into the face
    steps = []
    for y in range(h):
        f = np.flatnonzero(face[y])
        if len(f) < 20:
            continue
        e = f[0] if yaw < 0 else f[-1]
        inside, outside = e + into * np.arange(2, 7), e - into * np.arange(2, 7)
        if min(inside.min(), outside.min()) < 0 or max(inside.max(), outside.max()) >= w:
            continue
        if drawn[y, outside].all() and not face[y, outside].any():
            steps.append(lum[y, inside].mean() / max(lum[y, outside].mean(), 1e-3))
    return (float(np.median(steps)) if steps else float("nan")), len(steps)


@pytest.mark.parametrize("name, yaw, pitch, before, most", [("obama_speech.jpg", -30, 0, 2.18, 1.6),
                                                            ("obama_speech.jpg", -30, -20, 2.13, 1.6),
                                                            ("business_person.png", 30, 0, 1.56, 1.45)])
def test_a_turned_heads_completed_far_cheek_has_no_outline_of_its_own(results, name, yaw, pitch, before, most):
    """Turned to show the side its photo did not see, obama_speech (yaw -30, chin level and up 20) showed a dark second
    silhouette beside his face (issue 11, lead's session 58: pg_os.png): the face completion carried the face's light on
    over his far cheek to the template's edge at the ear, while the hidden side behind the silhouette darkens with its
    depth, so the completed cheek stood as a lit mask with its own outline against a dark head (luminance 0.53 beside
    0.20, 3 px apart). By the template's outer edge its made-up points now go into the colour of the side beside them
    as deep as that side lies (completion.toward_side, MeshFitConfig.face_meets_side_m, face_side_border_m). Per row of the 512 px view, the luminance 2-6 px inside
    the face part's far edge over that 2-6 px outside it, median: `before` on main d74b489 (obama_speech 2.18 / 2.13,
    business_person's far jaw over her neck's side at yaw 30 1.56), 1.47 / 1.37 / 1.38 now."""
    step, rows = _far_face_edge_step(results[name].avatar, yaw, pitch)
    assert rows >= 100, f"only {rows} rows show the far face edge against the side beyond it"
    assert step < most, (f"{name} at yaw {yaw}, pitch {pitch}: the far face edge {step:.2f} x the side beside it "
                         f"({before} on d74b489)")


def test_behind_a_short_haired_ear_the_hidden_side_is_the_hair(results):
    """obama_official's short grey hair: seen from 60 deg round the side, the head behind his ear at the ear's
    rows was tan (the ear's skin on the side band, then the skin in shadow, since the rim beside it is the ear,
    not hair): saturation 0.31 against the hair's 0.04. Behind the ear the side turns to the hair sooner
    (MeshFitConfig.ear_far_from) and the far side is the hair down to the eyes' row, fading by the nose base's."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_official.jpg"].avatar, 60, 0, background=(0.0, 0.0, 0.0), backend="cpu",
                      orbit=True)
    box = img[135:175, 318:348].reshape(-1, 3)  # just behind the ear, at its rows
    assert (box.max(-1) > 0.02).mean() > 0.9
    c = np.median(box, 0)
    sat = (c.max() - c.min()) / c.max()
    assert sat < 0.2, f"behind the ear: rgb {np.round(c, 3)}, saturation {sat:.2f} (skin-tan, not the grey hair)"


@pytest.mark.parametrize("name, shell, hair", [
    ("obama_official.jpg", (90, 150, 330, 352), (70, 110, 240, 290)),
    ("astronaut_eileen_collins.png", (100, 200, 362, 385), (70, 130, 250, 320))])
def test_a_turned_heads_hidden_side_carries_the_hairs_detail(results, name, shell, hair):
    """Turned 35 deg, every avatar showed a smooth pale shell round its hair, a hood rather than hair (issue 11): the
    hidden side's detail (the photo's, SideLook.texture) reached past the hair band into the face with the depth, and
    the wall's discs blurred what was left. The shell's high-pass detail was 0.29 (obama_official) and 0.31
    (astronaut_eileen_collins) x the visible hair's beside it; now 0.52 and 0.44 (MeshFitConfig.side_texture_fold_m,
    side_texture_gain)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results[name].avatar, 35, 0, background=(0.0, 0.0, 0.0), backend="cpu").astype(np.float32)
    lum = img.mean(-1)
    detail = lum - cv2.GaussianBlur(lum, (0, 0), 2)

    def std(box):
        y0, y1, x0, x1 = box
        alive = img[y0:y1, x0:x1].max(-1) > 0.02
        assert alive.mean() > 0.9
        return float(detail[y0:y1, x0:x1][alive].std())

    ratio = std(shell) / std(hair)
    assert ratio > 0.4, f"the hidden side's detail {ratio:.2f} x the visible hair's"


@pytest.mark.parametrize("name, box, before", [
    ("obama_speech.jpg", (185, 235, 382, 400), 0.0162),  # his near ear, behind it (main 94faf56)
    ("two_children_multiface.jpeg", (185, 235, 352, 375), 0.0122),  # the boy's left ear (e8c097d: whole since)
])
def test_a_turned_ear_is_not_drawn_again_behind_itself(results, name, box, before):
    """The hidden side's detail (SideLook.texture) is the photo's from as far inside the outline as the side lies
    behind it: an ear at the outline gave the side behind it its own folds and rims, and turned 30 deg towards it the
    head showed the ear a second time, stretched, in grey ribs beside the photo's (turn60). The ears' zones
    (surfaces.ear_zones) give no detail to the side (the colour test before them, nearer the skin than 0.25 x the
    hair, let ears in shade or fold pass for hair). High-pass (luminance less its 2 px blur) std of the turned view
    (512, yaw 30 from the photo's pose) in the box beside the ear: obama_speech 0.0162 -> 0.0076, two_children
    0.0122 -> 0.0059 (the visible ear's own about 0.03)."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat, matrix_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    a = results[name].avatar
    rot, view = photo_pose(a)
    c = FaceControl.rest()
    c.rotation = matrix_to_quat(rot @ quat_to_matrix(euler_to_quat(30.0, 0.0, 0.0).astype(np.float64))).astype(np.float32)
    p = Driver(a).drive(c, viewmat=view)
    K, w, h = source_intrinsics(a, 512)
    img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, w, h,
                    backend="cpu").image
    lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
    y0, y1, x0, x1 = box
    detail = (lum - cv2.GaussianBlur(lum, (0, 0), 2.0))[y0:y1, x0:x1]
    alive = lum[y0:y1, x0:x1] > 0.05
    assert alive.mean() > 0.8, f"the box is not on the side behind the ear: {alive.mean():.2f} of it drawn"
    assert float(detail[alive].std()) < 0.011, f"{detail[alive].std():.4f} (before {before}): the ear drawn again"


def test_a_turned_photos_far_ear_is_not_mirrored_behind_its_place(results):
    """obama_speech's photo is turned 13 deg: his far half's hidden back is the near half's mirror image
    (completion.mirrored_back). The proxy's back behind his near ear lies as deep as the head's, a fin some 6 cm deep
    beside the skull; mirrored, it pushed the far half's back out at the ears' rows, and turned to show that side
    (yaw -30) he had a second ear 3-5 cm behind where the far ear lies (session 60, by eye; ear61). The near ear
    (surfaces.ear_zones to EAR_RIM_REACH) is not mirrored now. Far-half Gaussians at the ears' rows (the template's brows
    to its nose base), 4-6 cm behind the far cheek's landmark (template CHEEK_R / CHEEK_L): how far beyond that
    landmark they reach (the ear a real head has there lies within 3 cm of it): 20.5 / 21.6 mm at 4-5 / 5-6 cm before,
    10.3 / 8.7 after (the far half as wide there as its skull above and below the ear)."""
    from gaussian_head_ros.core import landmarks as lmk

    a = results["obama_speech.jpg"].avatar
    v, m = np.asarray(a.template_vertices, np.float64), np.asarray(a.means, np.float64)
    vm = np.asarray(a.source_camera.viewmat, np.float64)
    near = np.sign((-vm[:3, :3].T @ vm[:3, 3])[0])  # the camera's side of the mid-sagittal plane
    cheek = next(v[i] for i in (lmk.CHEEK_R, lmk.CHEEK_L) if np.sign(v[i, 0]) != near)
    rows = (m[:, 1] > v[list(lmk.BROW_R + lmk.BROW_L), 1].min()) & (m[:, 1] < v[lmk.NOSE_BASE, 1])
    behind = m[:, 2] - cheek[2]
    beyond = -near * m[:, 0] - abs(cheek[0])  # metres further from the mid-plane than the far cheek
    reach = [1000 * float(beyond[rows & (behind > lo) & (behind < lo + 0.01)].max()) for lo in (0.04, 0.05)]
    assert max(reach) < 15.0, f"far-half Gaussians 4-6 cm behind the far cheek reach {reach} mm beyond it: the near " \
                              "ear mirrored behind the far one's place (before ear61: 20.5, 21.6)"


def test_a_turned_heads_glasses_across_the_face_outline_are_drawn_once():
    """lp_d8_man_glasses' lens rims, hinges and arms cross the face mesh's outline at his temples, where the mesh's
    edge falls back 2 cm within 2-3 px and the head proxy outside it comes forward again (a groove): the photo layer
    put the line's pixels on the groove's two walls, and turned 30 deg they drew apart, the glasses drawn twice
    (sessions 58-60). Here: the photo's thin lines (white / black top-hat over a 9 px disc >= 0.04), the photo layer's
    Gaussians (the avatar's first info["photo_layer"] rows) at the photo's pose, the frontmost within 3 mm at each
    pixel, and the pairs of neighbouring line pixels within 6 px of the outline that lie on its two sides: how many
    move more than 2 px apart (x) when the head turns 30 deg either way. Before (main a660894): 28 / 31 of 214;
    after (border_lines): 12 / 14."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat, matrix_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.reconstruct.surfaces import rasterize_mesh

    res = mesh_fit_result(read_image(str(shared("portraits", "lp_d8_man_glasses.jpg"))))
    a, photo = res.avatar, res.photo
    S = photo.shape[0]
    K = source_intrinsics(a, S)[0].astype(np.float64)
    rot, view = photo_pose(a)
    vm = np.asarray(a.source_camera.viewmat, np.float64)
    verts = np.asarray(a.template_vertices, np.float64) + res.expression  # the mesh as the photo shows it
    fid, _, _ = rasterize_mesh(verts @ vm[:3, :3].T + vm[:3, 3], np.asarray(a.template_faces, np.int64), K, S)
    outer, _ = cv2.findContours((fid >= 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    face = cv2.drawContours(np.zeros((S, S), np.uint8), outer, -1, 1, cv2.FILLED).astype(bool)  # eyes, mouth filled
    lum = photo.astype(np.float32) / 255 @ np.array([0.299, 0.587, 0.114], np.float32)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    line = ((cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, disc) >= 0.04)
            | (cv2.morphologyEx(lum, cv2.MORPH_BLACKHAT, disc) >= 0.04))
    outline = np.where(face, cv2.distanceTransform(face.astype(np.uint8), cv2.DIST_L2, 5),
                       cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 5)) <= 6
    driver = Driver(a)

    def seen(yaw):  # [n_photo, 2] pixels, [n_photo] camera z of the photo layer, the head turned by yaw from the photo's
        c = FaceControl.rest()
        c.rotation = matrix_to_quat(rot @ quat_to_matrix(euler_to_quat(yaw, 0.0, 0.0).astype(np.float64))).astype(
            np.float32)
        cam = driver.drive(c, viewmat=view).means[:res.info["photo_layer"]].astype(np.float64) @ view[:3, :3].T
        cam += view[:3, 3]
        return cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]], cam[:, 2]

    uv0, z0 = seen(0.0)
    ij = np.floor(uv0[:, ::-1]).astype(np.int64)
    rows = np.flatnonzero(np.all((ij >= 0) & (ij < S), axis=1))
    at = ij[rows, 0] * S + ij[rows, 1]
    nearest = np.full(S * S, np.inf)
    np.minimum.at(nearest, at, z0[rows])
    front = z0[rows] <= nearest[at] + 0.003
    rows, at = rows[front], at[front]
    counted = (line & outline).ravel()
    apart = []
    for yaw in (-30.0, 30.0):
        dx_sum, n = np.zeros(S * S), np.zeros(S * S)
        np.add.at(dx_sum, at, seen(yaw)[0][rows, 0] - uv0[rows, 0])
        np.add.at(n, at, 1)
        dx = np.where(n > 0, dx_sum / np.maximum(n, 1), np.nan).reshape(S, S)
        on = (counted & (n > 0)).reshape(S, S)
        pairs = far = 0
        for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each neighbour pair once
            a0 = (slice(0, S - di), slice(max(0, -dj), S - max(0, dj)))
            a1 = (slice(di, S), slice(max(0, dj), S - max(0, -dj)))
            both = on[a0] & on[a1] & (face[a0] != face[a1])
            pairs += int(both.sum())
            far += int((both & (np.abs(dx[a0] - dx[a1]) > 2.0)).sum())
        apart.append((far, pairs))
    assert all(far <= 20 for far, _ in apart), f"{apart} (line pixel pairs across the outline > 2 px apart, yaw -30 / " \
                                                "30; before 28 / 31 of 214): the glasses drawn twice"


def test_a_turned_necks_hidden_side_has_no_dotted_line_above_the_collar(results):
    """The hidden side's detail (SideLook.texture, x side_texture_gain 2) taken from the jaw's shadow and the collar drew
    a jagged dotted line round obama_official's neck above the collar, turned 35 deg (halo22, session 22); the detail
    is taken from the head above the mouth only, fading out by the chin's row. The neck's high-pass detail there (the
    512 px source view): 0.046 without that fade, 0.014 with it (review22, session 22)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["obama_official.jpg"].avatar, 35, 0, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float32)
    lum = img.mean(-1)
    detail = (lum - cv2.GaussianBlur(lum, (0, 0), 2))[305:325, 305:345]  # the neck column's far outline: x 346-349
    alive = img[305:325, 305:345].max(-1) > 0.02  # (it flared out to x 367 into the shoulder before neck25)
    assert alive.mean() > 0.9, f"the box is not on the neck: {alive.mean():.2f} of it drawn"
    assert float(detail[alive].std()) < 0.03, f"the turned neck's detail {detail[alive].std():.3f}: a dotted line"


def test_a_turned_neck_is_a_column_rising_out_of_the_collar(results):
    """Below the chin the photo's silhouette takes in the collar and shoulders beside the neck; they stood at the neck's
    own depth, and the nape's back was a flat band 5 cm behind the skull centre across +-5..8 cm: turned 35 deg
    obama_official's neck flared out into the jacket's shoulder as one wide slab. The nape's back curves round a
    neck column now (MeshFitConfig.neck_half_width_m, 6 cm): the far outline goes straight down into the collar. In
    the 512 px source view, the far outline over the 20 rows above the shoulder (316-335) stands 19.6 px beyond the
    neck's narrowest (rows 250-335) on main 28fef45, 4.65 px now."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    avatar = results["obama_official.jpg"].avatar
    black, white = (source_view(avatar, 35, 0, size=512, background=(b, b, b), backend="cpu") for b in (0.0, 1.0))
    alpha = 1 - (white - black).mean(-1)
    far = np.array([np.flatnonzero(alpha[r] > 0.5).max() for r in range(250, 336)])  # the far side turns right
    assert far.min() < 400, f"the neck's outline at x {far.min()}: not the neck"
    flare = float(far[-20:].mean() - far.min())
    assert flare < 8, f"the turned neck flares {flare:.1f} px out towards the shoulder"


@pytest.mark.parametrize("yaw", [0, 25])
def test_a_raised_chin_leaves_the_collar_and_neck_closed(results, yaw):
    """The torso's levels turn by shares of the head's turn rising towards the neck (core.deform), so a chin raised 20
    deg parts the rows of the photo's discs on the neck and the collar below it (their rest spacing up to 1.45 x at the
    collar): business_person's white collar and neck in rows of dots with dark lines between (issue 11, neck34). Each
    torso level grows by its rows' spread under the turn now (deform.torso_level_scales). Row ripple (mean |l(y) -
    (l(y-1) + l(y+1)) / 2| of the luminance) over the neck and collar (rows 330-420 x 200-330 of the 512 px view) as
    a share of the photo's pose's: 1.48 (yaw 0) and 1.52 (yaw 25) on 02d12ec (1.64, 1.60 on caf3a30), 0.42 and 0.67
    now."""
    from gaussian_head_ros.core.reconstruct.lighting import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_view

    a = results["business_person.png"].avatar

    def ripple(yaw_deg, pitch_deg):
        img = source_view(a, yaw_deg, pitch_deg, size=512, background=(0.0, 0.0, 0.0), backend="cpu")
        box = img[330:420, 200:330].astype(np.float64)
        lum, drawn = box @ LUMA, box.max(-1)[1:-1] > 0.02
        assert drawn.mean() > 0.95, "the box is not on the neck and collar"
        return float(np.abs(lum[1:-1] - 0.5 * (lum[:-2] + lum[2:]))[drawn].mean())

    share = ripple(yaw, -20) / ripple(0, 0)
    assert share < 1.2, f"the raised chin's collar and neck ripple {share:.2f} x the photo's pose's: rows parted"


def test_a_turned_collar_beside_the_neck_is_the_torsos(results):
    """Below the chin the collar and the jacket's shoulder beside the neck column stood at the neck's depth: turned 35 deg
    obama_official's shoulder showed as a pale (grey-tan: the rim's white collar, skin and navy blurred) slab stepping
    out from the neck's foot down to the shoulder. They are the torso's now (MeshFitConfig.neck_beside_torso_m: from
    their top where they rise into view below the chin): the jacket's shoulder rises behind the neck at its own height.
    In the 512 px source view, below the neck's foot (rows 336-371, beyond the neck's narrowest outline over rows
    250-335): pixels no bluer than red (not the navy jacket) 147 on main 636ca82, 77 now; the far outline 6 px under the
    foot (row 340) 28 px beyond the neck on main, 49 now."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    avatar = results["obama_official.jpg"].avatar
    black, white = (source_view(avatar, 35, 0, size=512, background=(b, b, b), backend="cpu") for b in (0.0, 1.0))
    alpha = 1 - (white - black).mean(-1)
    neck = min(int(np.flatnonzero(alpha[r] > 0.5).max()) for r in range(250, 336))  # the far side turns right
    assert neck < 400, f"the neck's outline at x {neck}: not the neck"
    img, drawn = black[336:372, neck + 4:], alpha[336:372, neck + 4:] > 0.5
    pale = int((drawn & (img[..., 0] >= img[..., 2])).sum())
    assert pale < 110, f"{pale} pale px between the turned neck's foot and the jacket's shoulder"
    rise = int(np.flatnonzero(alpha[340] > 0.5).max()) - neck
    assert rise > 40, f"the shoulder's outline under the neck's foot only {rise} px beyond the neck: it does not rise"


def test_the_neck_column_leaves_no_specks_under_a_chin_tilted_back(results):
    """The neck column's nape (MeshFitConfig.neck_half_width_m) pulls the hidden back in round the neck. As an ellipse
    centred under the skull centre (neck25 3877dda) it left see-through specks under obama_speech's chin as sadtalker
    tilts his head back (frames 46-59: 1-6 px a frame in the box below, 51 in all; the living-face table's holes p95
    on that pair 2.05 -> 6.0 px); centred on the chin's x, still an ellipse: 39. Flatter-sided (neck_section_power
    3) it leaves main's: 1 px in frames 55 and 58 (28fef45 the same)."""
    import glob as _glob

    from gaussian_head_ros.core.evaluate import EvalConfig, render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.holes import composite, hole_mask
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    clip = _glob.glob(str(shared("driving") / "sadtalker*"))[0]
    frames = read_frames(clip, max_frames=60)
    cfg, driver = EvalConfig(), Driver(results["obama_speech.jpg"].avatar)
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, cfg.fov_deg)
    specks = []
    with FaceTracker(TrackerConfig(fov_deg=cfg.fov_deg)) as tracker:  # tracked from frame 0, as the table does
        for i, f in enumerate(frames):
            c = tracker.process(f.rgb, f.stamp_ns, K)
            if i < 46 or c is None or not c.face_detected:
                continue
            o = render_control(driver, c, K, w, h)
            img = np.asarray(o.image, np.float32)
            holes = hole_mask(img, composite(img, o.alpha, (1, 1, 1)))
            box = holes[int(0.8 * h):int(0.9 * h), int(0.37 * w):int(0.5 * w)]  # under the chin, 512 px 190-255 x 410-460
            specks.append(int(box.sum()))
    assert len(specks) >= 12, f"only {len(specks)} frames tracked"
    assert sum(specks) <= 8, f"see-through specks under the chin, frames 46-59: {specks}"


def test_a_cut_section_takes_the_colour_at_the_cut(results):
    """trump_official's photo ends at his dark jacket inside the crop; seen from below (pitch -20 deg) the body's
    section there showed the hidden side's colour, a light grey line along the jacket bottom (0.25 luminance
    over the last rows, the jacket 0.07); it takes the colour at the cut all through now."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["trump_official.png"].avatar, 0, -20, background=(0.0, 0.0, 0.0), backend="cpu")
    lum, alive = img.mean(-1), img.max(-1) > 0.02
    last = []
    for c in range(100, 170, 10):  # under the jacket's left side
        yb = np.flatnonzero(alive[:, c]).max()
        last.append(lum[yb - 6:yb + 1, c].mean())
    assert np.mean(last) < 0.15, f"bottom rows of the jacket: luminance {np.round(last, 2)}"


def _open_jaw(avatar, th, background=(0.0, 0.0, 0.0)):
    """Open the jaw by th rad about drive()'s hinge (between the cheeks): the lower lip (inner contour
    included), the chin and the jaw line turn down, fading out towards the cheeks, as a tracker reports it.
    -> (render on `background` from the source camera, [H, W] bool the deformed inner-lip polygon)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    from gaussian_head_ros.core.landmarks import (LIP_LOWER_INNER, LIP_LOWER_OUTER, MOUTH_CORNER_L, MOUTH_CORNER_L_IN,
                                                  MOUTH_CORNER_R, MOUTH_CORNER_R_IN)

    v = avatar.template_vertices.astype(np.float64)
    lip_y = 0.5 * (v[13, 1] + v[14, 1])
    lower_lip = list(LIP_LOWER_INNER + LIP_LOWER_OUTER)
    below = (v[:, 1] > lip_y + 0.001) | np.isin(np.arange(len(v)), lower_lip)
    # The mouth corners join the lips and a tracker moves them only partly with the jaw: never turned fully, even
    # where a rest mouth's corners sit below the lips' centre (business_person's, its closed-lip smile taken out:
    # expression.SMILE_CORNER_DROP_M); one corner turned tore the upper lip's corner open, a lip-coloured smear
    # down the chin that no driven frame shows.
    below[[MOUTH_CORNER_R, MOUTH_CORNER_L, MOUTH_CORNER_R_IN, MOUTH_CORNER_L_IN]] = False
    w = below * np.exp(-(v[:, 0] / 0.04) ** 4)
    pivot = np.array([0.0, *(0.5 * (v[234] + v[454]))[1:]])
    rx = np.array([[1, 0, 0], [0, np.cos(th), -np.sin(th)], [0, np.sin(th), np.cos(th)]])
    expr = ((v - pivot) @ rx.T + pivot - v) * w[:, None]
    c = FaceControl.rest()
    c.expression = expr.astype(np.float32)
    p = Driver(avatar).drive(c)
    K, wd, ht = source_intrinsics(avatar)
    out = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, avatar.source_camera.viewmat, K, wd, ht,
                    background=background, backend="cpu")
    loop = hole_loops()["mouth"]
    pts = (v[loop] + expr[loop]) @ avatar.source_camera.viewmat[:3, :3].T + avatar.source_camera.viewmat[:3, 3]
    uv = pts[:, :2] / pts[:, 2:] * K[0, 0] + K[:2, 2]
    mask = np.zeros((ht, wd), np.uint8)
    cv2.fillPoly(mask, [np.round(uv).astype(np.int32)], 1)
    return out, mask


def test_open_jaw_shows_a_mouth_interior_not_a_hole(results):
    out, mask = _open_jaw(results["business_person.png"].avatar, 0.25, background=(1.0, 0.0, 1.0))  # closed-mouth photo
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    assert mask.sum() > 200, "the jaw did not open"
    inside = out.image[mask]
    assert np.all(out.alpha[mask] > 0.95), "a hole in the open mouth"
    luma = inside @ np.array([0.299, 0.587, 0.114])
    assert np.mean(luma < 0.35) > 0.25, "no dark cavity in the open mouth"
    assert np.mean(luma > 0.9) < 0.1, "a white patch in the open mouth"


def test_a_laughs_lower_teeth_go_down_with_the_lower_lip_and_the_photos_jaw_keeps_the_chins(results):
    """deform.interior_jaw_angle: in a laugh the lower lip falls far more than the chin (sadtalker_WDA_KatieHill
    frame 29: the lower inner lip turned 0.25 rad about the hinge, the chin 0.15). Turned by the chin's angle
    alone, the lower row stayed just under the upper one while the lip fell below it: a tall grey slab of lower
    teeth and gum, no gap between the rows (here, the lower lip 18 mm down and the chin 3 mm: the lower row
    0.45 mm down on the old code). The synthetic lower levels now share the lip's turn less
    DriveConfig.lower_teeth_show_m; the upper row stays with the skull, and the jaw-weight-1 level (the photo's
    own lower-jaw pixels, the floor of the mouth) keeps the chin's angle (with it, self tpsmm_driving's frame 0,
    whose lower lip is turned 0.075 rad at a chin's 0, lost 2.4 dB: mouth20, session 20). A closed mouth moves
    nothing."""
    from gaussian_head_ros.core.avatar import JAW_PARTS
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.landmarks import CHIN, LIP_LOWER_INNER, LIP_LOWER_OUTER
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    a = results["business_person.png"].avatar
    v = a.template_vertices.astype(np.float64)
    lower_lip = list(LIP_LOWER_INNER + LIP_LOWER_OUTER)
    ex = np.zeros((len(v), 3), np.float32)
    ex[lower_lip, 1] = 0.018  # the lower lip 18 mm down (y down), the chin 3 mm
    ex[CHIN, 1] = 0.003
    drv = Driver(a)
    p = drv.drive(FaceControl(expression=ex))
    w = a.bary[:, 0]
    mouth = np.isin(a.part, JAW_PARTS)
    lower_row = mouth & np.isclose(w, MouthConfig().lower_teeth_follow, atol=1e-3)
    upper_row, jaw = mouth & (w == 0), mouth & (w == 1)
    assert lower_row.sum() > 200 and upper_row.sum() > 200 and jaw.sum() > 200
    dy = p.means[:, 1] - a.means[:, 1]
    assert np.abs(dy[upper_row]).max() < 1e-5
    assert np.median(dy[lower_row]) > 0.0025, f"the lower row went {1000 * np.median(dy[lower_row]):.1f} mm down"
    chin_only = np.zeros_like(ex)
    chin_only[CHIN, 1] = 0.003
    assert np.allclose(p.means[jaw], drv.drive(FaceControl(expression=chin_only)).means[jaw], atol=1e-6), \
        "the jaw-weight-1 level turned with the lip, not the chin"
    rest = drv.drive(FaceControl(expression=np.zeros_like(ex)))
    assert np.abs(rest.means[mouth] - a.means[mouth]).max() < 1e-6


def test_a_laugh_shows_a_lit_tongue_between_the_rows(results):
    """MouthConfig.tongue_rise_m / tongue_light: at a laugh (the lower lip 18 mm down, the chin 3 mm; the rows
    parted by deform.interior_jaw_angle) the tongue shows between the rows above the lower row's edge, lit, as
    the operator's does (sadtalker_WDA_KatieHill frame 29). Seen from the front at the midline (|x| < 5 mm):
    the band between the upper row's edge and the lower row's edge that the tongue fills is over 4 mm tall
    (measured 5.1; its tip 3 mm above the lower row's edge: 2.1; main, the rows touching: -1.4), and the
    tongue's tip is at least 0.285 x the upper row's bright (90th percentile) luma (measured 0.30; lit 0.3 + 0.3:
    0.27, it read as part of the dark band between the rows; the tongue at most 0.35 x the teeth's colour:
    test_the_synthetic_teeth_are_teeth_not_a_band).
    """
    from gaussian_head_ros.core.avatar import PART_MOUTH, sh_dc_to_rgb
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.landmarks import CHIN, LIP_LOWER_INNER, LIP_LOWER_OUTER
    from gaussian_head_ros.core.colour import LUMA
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    a = results["business_person.png"].avatar
    cfg = MouthConfig()
    lower_lip = list(LIP_LOWER_INNER + LIP_LOWER_OUTER)
    ex = np.zeros((len(a.template_vertices), 3), np.float32)
    ex[lower_lip, 1] = 0.018
    ex[CHIN, 1] = 0.003
    p = Driver(a).drive(FaceControl(expression=ex))
    w, scale = a.bary[:, 0], disc_width(a)
    mouth = (a.part == PART_MOUTH) & (np.abs(a.means[:, 0] - a.means[a.part == PART_MOUTH, 0].mean()) < 0.005)
    tongue = mouth & np.isclose(w, cfg.lower_teeth_follow, atol=1e-3) & np.isclose(scale, 0.75 * cfg.tongue_spacing_m,
                                                                                   rtol=0.02)
    teeth = mouth & np.isclose(scale, 0.7 * cfg.teeth_spacing_m, rtol=0.02)
    lower, upper = teeth & (w > 0), teeth & (w == 0)
    assert tongue.sum() > 10 and lower.sum() > 10 and upper.sum() > 10
    y = p.means[:, 1]  # down
    band = y[lower].min() - max(y[upper].max(), y[tongue].min())
    assert band > 0.004, f"the tongue fills {1000 * band:.1f} mm between the rows"
    rgb = sh_dc_to_rgb(a.sh[:, 0])
    tip = float((rgb[tongue] @ LUMA).max() / np.percentile(rgb[upper] @ LUMA, 90))
    assert tip >= 0.285, f"the tongue's tip {tip:.2f} x the teeth's luma"


def test_a_scream_takes_the_lower_teeth_down_behind_the_lower_lip(results):
    """DriveConfig.interior_max_rad: at a scream (lp_d18 frames 125-150: the lower inner lip 38-40 mm down, the
    chin ~15 mm) the lower row's turn (`deform.interior_jaw_angle`, the lip's drop less the row's show) asks
    ~0.69 rad; clipped at the chin's jaw_max_rad (0.5) the row stopped short and stood in the opening as a tall grey
    slab above the lip, where the operator's lower lip hides his teeth. Seen at the midline (|x| < 5 mm) of
    business_person: the lower row's edge at most 11 mm above the lower inner lip (measured 10.0; clipped at 0.5:
    14.9); a laugh's 18 mm drop shows 3-7 mm of it (5.6 mm until DriveConfig.lower_teeth_show_m went 5 -> 2 mm,
    tongue62, session 62: 3.9; sadtalker_WDA_KatieHill's laugh, frame 29, shows 4.6 mm of lower teeth above its
    lower inner lip, lp_d18's widest frames 0-1.9)."""
    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.landmarks import CHIN, LIP_LOWER_INNER, LIP_LOWER_OUTER, LOWER_LIP_IN
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    a = results["business_person.png"].avatar
    lower_lip = list(LIP_LOWER_INNER + LIP_LOWER_OUTER)
    w, scale = a.bary[:, 0], disc_width(a)
    mid = (a.part == PART_MOUTH) & (np.abs(a.means[:, 0] - a.template_vertices[LOWER_LIP_IN, 0]) < 0.005)
    lower = mid & np.isclose(scale, 0.7 * MouthConfig().teeth_spacing_m, rtol=0.02) & (w > 0)
    assert lower.sum() > 10
    driver, above = Driver(a), {}
    for drop, chin in ((0.018, 0.003), (0.039, 0.015)):
        ex = np.zeros((len(a.template_vertices), 3), np.float32)
        ex[lower_lip, 1], ex[CHIN, 1] = drop, chin
        p = driver.drive(FaceControl(expression=ex))
        above[drop] = a.template_vertices[LOWER_LIP_IN, 1] + drop - p.means[lower, 1].min()  # y down
    assert above[0.039] <= 0.011, f"the lower row's edge {1000 * above[0.039]:.1f} mm above the screaming lower lip"
    assert 0.003 <= above[0.018] <= 0.007, f"a laugh's lower row {1000 * above[0.018]:.1f} mm above the lip"


def _jaw_open_render(a, jaw_open):
    """A render function av -> [H, W, 3] of avatar `av` (`a` or a repainted copy) driven by a blendshape-only jawOpen
    at `a`'s photo pose, from its source camera (cpu backend)."""
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    rot, view = photo_pose(a)
    K, wd, ht = source_intrinsics(a)
    c = FaceControl(rotation=matrix_to_quat(rot).astype(np.float32), blendshape_names=["jawOpen"],
                    blendshapes=np.array([jaw_open], np.float32))

    def render(av):
        p = Driver(av).drive(c, viewmat=view)
        return rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, wd, ht,
                         backend="cpu").image

    return render


def test_a_scream_shows_the_tongue_not_a_black_hole(results):
    """MouthConfig.tongue_depth_m / tongue_lit_m and the tongue's glide (mouth.jaw_binding): at a scream (lp_d18
    frames 125-150: the lower inner lip ~39 mm down) the operator shows a pink tongue over the lower half of the
    opening. The tongue turned with the lower row (~0.7 rad) without gliding forward with it went back behind the
    back wall: the opening was the cavity's dark from the upper teeth down to the lower row. At a blendshape-only
    jawOpen 1.0 (the lower lip 40 mm down, expression.JAW_PER_JAW_OPEN_M) at the photo's own pose, down the
    opening's midline (5 px columns, the source camera; the tongue found by painting it) the tongue holds at least
    0.15 of the opening on business_person and lp_d8_man_glasses (closed-mouth photos: synthetic interiors)."""
    import dataclasses

    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    cfg, shares = MouthConfig(), {}
    for name in ("business_person.png", "lp_d8_man_glasses.jpg"):
        a = results[name].avatar
        render = _jaw_open_render(a, 1.0)
        mouth = a.part == PART_MOUTH
        tongue = mouth & np.isclose(disc_width(a), 0.75 * cfg.tongue_spacing_m, rtol=0.02) & (
            a.bary[:, 0] > 0)
        assert tongue.sum() > 100, f"{name}: {tongue.sum()} tongue Gaussians"
        sh = a.sh.copy()
        sh[mouth, 0] = (np.array([0.0, 0.0, 1.0]) - 0.5) / 0.28209479177387814  # the rest of the interior: blue
        sh[tongue, 0] = (np.array([0.0, 1.0, 0.0]) - 0.5) / 0.28209479177387814  # the tongue: green
        im, painted = render(a), render(dataclasses.replace(a, sh=sh))
        seen = np.abs(painted - im).sum(-1) > 0.05  # the interior shows here
        assert seen.sum() > 500, f"{name}: the mouth did not open ({seen.sum()} px)"
        cx = int(np.median(np.nonzero(seen)[1]))
        rows = np.flatnonzero(seen[:, cx - 2:cx + 3].any(1))
        pcol = painted[rows.min():rows.max() + 1, cx - 2:cx + 3].mean(1)
        shares[name] = float(np.mean((pcol[:, 1] > 0.6) & (pcol[:, 0] < 0.4) & (pcol[:, 2] < 0.4)))
    assert min(shares.values()) >= 0.15, f"the tongue's share of the screaming opening's midline: {shares}"


def _opening_lower_half_redness(a, jaw_open: float) -> float:
    """Median CIE Lab a* of the lower half of the mouth interior seen in `a` driven by a blendshape-only jawOpen at its
    photo pose (its source camera; the interior's pixels found by painting it)."""
    import dataclasses

    from gaussian_head_ros.core.avatar import JAW_PARTS

    render = _jaw_open_render(a, jaw_open)
    mouth = np.isin(a.part, JAW_PARTS)
    sh = a.sh.copy()
    sh[mouth, 0] = (np.array([0.0, 0.0, 1.0]) - 0.5) / 0.28209479177387814
    im, painted = render(a), render(dataclasses.replace(a, sh=sh))
    seen = np.abs(painted - im).sum(-1) > 0.05
    assert seen.sum() > 500, f"the mouth did not open ({seen.sum()} px)"
    rows = np.flatnonzero(seen.any(1))
    lower = seen & (np.arange(len(seen))[:, None] > 0.5 * (rows.min() + rows.max()))
    lab = cv2.cvtColor(np.clip(im, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    return float(np.median(lab[lower][:, 1]))


def test_a_wide_open_mouth_shows_a_red_tongue_not_grey_teeth(results):
    """mouth.tongue_colour (MouthConfig.tongue_lip_lightness / tongue_a / tongue_lip_b) and DriveConfig.
    lower_teeth_show_m: at the drivers' widest openings (lp_d18 frames 88 / 120, sadtalker_WDA_KatieHill 168,
    tpsmm_driving 87) the operators show a pink tongue over the lower half of the opening and at most ~2 mm of lower
    teeth (median Lab a* of the lower half of their inner-lip polygon 21.4-23.1); the avatars showed a grey-mauve
    tongue over a grey row of lower teeth 5 mm above the lip (7.6-17.6 on the nine portraits; look62, session 62).
    At a blendshape-only jawOpen 0.6 (the lower lip ~24 mm down) at the photo's pose, the lower half of the interior
    seen (painted) has a median a* of at least 11 on business_person and lp_d8_man_glasses (closed-mouth photos:
    synthetic interiors). Measured (tongue62, session 62): before 8.8 / 8.1, after 18.2 / 12.3 (at jawOpen 1.0,
    where the lower row still shows under the tongue: 14.2 / 9.9 -> 14.9 / 10.8)."""
    reds = {name: _opening_lower_half_redness(results[name].avatar, 0.6)
            for name in ("business_person.png", "lp_d8_man_glasses.jpg")}
    assert min(reds.values()) >= 11.0, f"the wide opening's lower half, median a*: {reds}"


def test_an_opened_smile_shows_its_upper_crowns_once(results):
    """mouth.jaw_side / photo_teeth, MouthConfig.smile_gap_max_m: a photo that smiles with its upper teeth shows
    them down to the lower lip. Split at the midline between the lips, the crowns' lower half turned with the jaw: an
    opened smile showed the upper row twice (astronaut_eileen_collins, trump_official at lp_d18's scream), and the
    lower lip's red rim under it as specks (obama_official). At a blendshape-only jawOpen 1.0 at the photo's pose,
    in the middle half of the opening, the jaw's part (the mouth Gaussians that turn with the jaw, painted) just
    below the upper part (12 px) shows no white: before 0.75 / 0.36 / 0.13 of it, now 0 (bound 0.05). An open-mouth
    photo's own lower teeth still turn with the jaw (obama_speech: 0.32, unchanged)."""
    import dataclasses

    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.colour import LUMA

    c0, white_shares = 0.28209479177387814, {}
    for name in ("astronaut_eileen_collins.png", "trump_official.png", "obama_official.jpg"):
        a = results[name].avatar
        render = _jaw_open_render(a, 1.0)
        mouth = a.part == PART_MOUTH
        up = mouth & (a.bary[:, 0] == 0)
        sh = a.sh.copy()
        sh[mouth, 0] = (np.array([1.0, 0.0, 0.0]) - 0.5) / c0  # turns with the jaw: red
        sh[up, 0] = (np.array([0.0, 0.0, 1.0]) - 0.5) / c0  # stays with the skull: blue
        im, painted = render(a), render(dataclasses.replace(a, sh=sh))
        jaw = (painted[..., 0] > 0.5) & (painted[..., 2] < 0.3)
        upper = (painted[..., 2] > 0.5) & (painted[..., 0] < 0.3)
        x0, x1 = np.percentile(np.nonzero(jaw | upper)[1], [25, 75]).astype(int)
        white = (im @ LUMA > 0.55) & ((im.max(-1) - im.min(-1)) / np.maximum(im.max(-1), 1e-6) < 0.35)
        below = []
        for x in range(x0, x1):
            u, j = np.flatnonzero(upper[:, x]), np.flatnonzero(jaw[:, x])
            if len(u) and len(j):
                below += list(white[j[(j > u.max()) & (j <= u.max() + 12)], x])
        assert len(below) > 50, f"{name}: the mouth did not open ({len(below)} px below the upper part)"
        white_shares[name] = float(np.mean(below))
    assert max(white_shares.values()) <= 0.05, f"white just below the upper row of an opened smile: {white_shares}"


def test_a_talking_jaw_keeps_the_lower_teeth_near_the_upper_ones(results):
    """deform.jaw_level_share: at a talking opening (0.12 rad) the lower row follows MouthConfig.
    lower_teeth_follow of the turn, so the opening shows two rows of teeth, not a black band between them
    (measured dark share 0.04; every level turning by its plain weight: 0.15). Wide open (0.25 rad) the rows
    part: test_open_jaw_shows_a_mouth_interior_not_a_hole. Since the lower row shows less at a talking opening
    (DriveConfig.lower_teeth_show_share, mouth36: a dark cavity between the rows, as a talking mouth shows;
    test_a_talking_opening_shows_a_dark_cavity_between_the_rows) the middle's dark share is 0.11, bound 0.14."""
    from gaussian_head_ros.core.deform import jaw_level_share

    w = np.linspace(0.0, 1.0, 8)
    assert np.allclose(jaw_level_share(w, 0.05), w) and np.allclose(jaw_level_share(w, -0.3)[1:], 1.0)
    assert jaw_level_share(w, 0.3)[0] == 0.0 and np.all(np.diff(jaw_level_share(w, 0.15)) > 0)
    out, mask = _open_jaw(results["business_person.png"].avatar, 0.12)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    assert mask.sum() > 200, "the lips did not part"
    # Where the rows face each other: the opening's middle half (its columns' 25th-75th percentile). Towards the
    # corners the teeth fade into the cavity by design (MouthConfig.corner_from / corner_shade, the buccal
    # corridor): over the whole opening 0.15 dark, in its middle half 0.04 (ef32e99, before that shade: 0.05 / 0.00).
    cols = np.nonzero(mask.any(0))[0]
    lo, hi = np.percentile(cols, [25, 75])
    mask[:, :int(lo)] = False
    mask[:, int(hi) + 1:] = False
    dark = float(np.mean(out.image[mask] @ np.array([0.299, 0.587, 0.114]) < 0.35))
    assert dark < 0.14, f"a dark band between the teeth rows: {dark:.2f} of the opening's middle dark"


def _lower_to_upper_teeth_luma(a, th):
    """The jaw opened th rad (`_open_jaw`): the lower teeth row's mean luma / the upper row's, where each shows
    inside the opened inner-lip polygon (the rows found by painting the synthetic teeth: upper red, lower green)."""
    import dataclasses

    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    luma = np.array([0.299, 0.587, 0.114])
    out, mask = _open_jaw(a, th)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    assert mask.sum() > 200, "the lips did not part"
    teeth = (a.part == PART_MOUTH) & np.isclose(disc_width(a), 0.7 * MouthConfig().teeth_spacing_m,
                                                rtol=0.02)
    sh = a.sh.copy()
    sh[teeth & (a.bary[:, 0] == 0), 0] = (np.array([1.0, 0.0, 0.0]) - 0.5) / 0.28209479177387814
    sh[teeth & (a.bary[:, 0] > 0), 0] = (np.array([0.0, 1.0, 0.0]) - 0.5) / 0.28209479177387814
    painted = _open_jaw(dataclasses.replace(a, sh=sh), th)[0].image
    upper = mask & (painted[..., 0] > 0.8) & (painted[..., 1] < 0.3) & (painted[..., 2] < 0.3)
    lower = mask & (painted[..., 1] > 0.8) & (painted[..., 0] < 0.3) & (painted[..., 2] < 0.3)
    assert upper.sum() > 20 and lower.sum() > 20, f"rows seen {upper.sum()} / {lower.sum()} px"
    lum = out.image @ luma
    return float(lum[lower].mean() / lum[upper].mean())


def test_the_lower_teeth_sit_in_the_shade(results):
    """At a talking opening (0.12 rad) the lower row, under the upper one and behind the lower lip, is dimmer
    than the upper row where each shows, but teeth, not grey (MouthConfig.lower_teeth_lit): the lower row's pixels
    (found by painting the rows) 0.75-0.93 x the upper row's mean luma. Both rows lit alike read as one slab of teeth
    (0.85 for every photo, session 9: business_person, lp_s9_monalisa under tpsmm_driving); lit 0.62 the lower row
    read grey next to the operator's white teeth (teeth21, teeth22). Measured (teeth22, session 22) business_person /
    two_children: lit 0.62 0.69 / 0.76, 0.75 0.79 / 0.87, 0.9 0.91 / 0.99. Before, the lower half of the opening
    against its 90th percentile (<= 0.82): that half holds the lower lip's inside as well, two_children's pink lip
    read 0.80 whatever the teeth (0.82 at lit 0.62, 0.87 at 0.75, alike by eye at 4x). Bound 0.9 -> 0.93 (session
    41, lit 0.75 -> 0.8: 0.77 / 0.86 -> 0.81 / 0.90): the operators' real rows at talking openings read 0.98-1.0
    (sadtalker_WDA_KatieHill frames 27 / 168, lp_d0 frame 65), and the rows stay apart by the cavity's dark
    (test_a_talking_opening_shows_a_dark_cavity_between_the_rows)."""
    for name in ("business_person.png", "two_children_multiface.jpeg"):  # closed-mouth photos: synthetic teeth
        ratio = _lower_to_upper_teeth_luma(results[name].avatar, 0.12)
        assert ratio <= 0.93, f"{name}: the lower teeth as lit as the upper ones ({ratio:.2f})"
        assert ratio >= 0.75, f"{name}: the lower teeth grey, {ratio:.2f} x the upper ones' light"


def test_a_wide_opening_shows_lower_teeth_not_a_grey_row(results):
    """A wide opening (0.3 rad) shows the lower crowns down towards their gum: that row still reads as teeth, at
    least 0.78 x the upper row's mean luma (MouthConfig.lower_teeth_lit, lit_lower_teeth_shadow). The operators'
    real rows read 0.73-1.0 (sadtalker_WDA_KatieHill frames 27 / 29 / 168, lp_d0 frame 65: bright unsaturated
    pixels above / below the gap, session 41). Before (lit 0.75, the shaded look's shadow 0.6 to the gum) the
    lower row read grey at wide openings: lp_d18 frame 138 on the nine portraits 0.54-0.79; here 0.757 / 0.877 ->
    0.796 / 0.920 (business_person / two_children)."""
    for name in ("business_person.png", "two_children_multiface.jpeg"):  # closed-mouth photos: synthetic teeth
        ratio = _lower_to_upper_teeth_luma(results[name].avatar, 0.3)
        assert ratio >= 0.78, f"{name}: the lower teeth grey at a wide opening, {ratio:.2f} x the upper ones' light"


@pytest.mark.parametrize("name, before", [("business_person.png", 0.0118), ("lp_s9_monalisa.jpg", 0.0252)])
def test_the_synthetic_teeth_rows_cover_the_cavity_behind_them(results, name, before):
    """MouthConfig.teeth_disc_aspect: the upper row covers the cavity behind it. Round opaque flat discs (0.7 x their
    spacing) let the dark cavity through midway between them: a dot grid over every synthetic crown on a display
    drawing the mouth larger than ~1 px a millimetre. The interior alone (nothing else drawn) at the photo's pose from
    the source camera at 2048 px, the upper row painted white and the rest of the interior black: inside the row
    (eroded 6 px) the share of black seen through, 90th percentile, was `before` with round discs, 0.0031 / 0.0073
    with discs 1.4 x as tall as wide (session 55). Bound: half of before."""
    import dataclasses

    import cv2

    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    a = results[name].avatar
    mouth = a.part == PART_MOUTH
    across = disc_width(a) / MouthConfig().teeth_spacing_m
    upper = mouth & np.isclose(across, 0.7, rtol=0.02) & (a.bary[:, 0] == 0)  # the upper row
    assert upper.sum() > 100
    sh = a.sh.copy()
    sh[mouth, 0] = -0.5 / 0.28209479177387814  # black
    sh[upper, 0] = 0.5 / 0.28209479177387814  # white
    rot, view = photo_pose(a)
    K, wd, ht = source_intrinsics(a, 2048)
    p = Driver(dataclasses.replace(a, sh=sh)).drive(FaceControl(rotation=matrix_to_quat(rot).astype(np.float32)),
                                                    viewmat=view)
    im = rasterize(p.means, p.quats, p.scales, np.where(mouth, p.opacities, 0.0).astype(np.float32), p.colors,
                   view.astype(np.float32), K, wd, ht, backend="cpu").image.min(-1)
    inside = cv2.erode((im > 0.5).astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    assert inside.sum() > 2000, f"the upper row covers {inside.sum()} px"
    leak = float(np.percentile(1.0 - im[inside], 90))
    assert leak <= 0.5 * before, f"the cavity shows through the upper teeth: {leak:.4f} (90th percentile)"


def test_a_talking_opening_shows_a_dark_cavity_between_the_rows(results):
    """deform.interior_jaw_angle / DriveConfig.lower_teeth_show_share: at a talking opening (a blendshape-only
    jawOpen 0.3, the photo's own pose) a closed-mouth photo (business_person) shows, down the opening's midline,
    the upper row's edge, the cavity and the tongue low behind the lower teeth, and the lower row's edge, not a
    grey slab of lower teeth: at least 0.15 of the opening's midline the cavity or the tongue, darker than the
    upper row (at most 0.8 x its mean luma), and the lower row at most 0.45 of it (parts found by painting them).
    Measured (session 36) 0.20 darker than half the upper row's luma / 0.33 (3 and 5 of 15 px); before, the lower
    row held 5 mm above the fallen lip at every opening: 0.00 / 0.53 (0 and 8 of 15 px). Since the tongue is lit
    as the operators' are (MouthConfig.tongue_per_teeth, session 41) its top is no longer darker than half the
    upper row: the cavity-or-tongue share by its paint instead."""
    import dataclasses

    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    a = results["business_person.png"].avatar
    render = _jaw_open_render(a, 0.3)
    cfg = MouthConfig()
    mouth = a.part == PART_MOUTH
    teeth = mouth & np.isclose(disc_width(a), 0.7 * cfg.teeth_spacing_m, rtol=0.02)
    sh = a.sh.copy()
    sh[mouth, 0] = (np.array([0.0, 0.0, 1.0]) - 0.5) / 0.28209479177387814  # cavity, tongue: blue
    sh[teeth & (a.bary[:, 0] == 0), 0] = (np.array([1.0, 0.0, 0.0]) - 0.5) / 0.28209479177387814
    sh[teeth & (a.bary[:, 0] > 0), 0] = (np.array([0.0, 1.0, 0.0]) - 0.5) / 0.28209479177387814
    im, painted = render(a), render(dataclasses.replace(a, sh=sh))
    seen = np.abs(painted - im).sum(-1) > 0.05  # the interior shows here
    assert seen.sum() > 200, "the lips did not part"
    cx = int(np.median(np.nonzero(seen)[1]))
    col, pcol = im[:, cx - 2:cx + 3].mean(1), painted[:, cx - 2:cx + 3].mean(1)
    rows = np.flatnonzero(seen[:, cx - 2:cx + 3].any(1))
    rows = np.arange(rows.min(), rows.max() + 1)  # the opening's midline, top to bottom
    upper = (pcol[rows, 0] > 0.6) & (pcol[rows, 1] < 0.4)
    lower = (pcol[rows, 1] > 0.6) & (pcol[rows, 0] < 0.4)
    assert upper.sum() >= 2 and lower.sum() >= 2, f"rows seen at the midline: {upper.sum()} / {lower.sum()} px"
    between = (pcol[rows, 2] > 0.6) & (pcol[rows, 0] < 0.4)  # the cavity or the tongue
    luma = col[rows] @ np.array([0.299, 0.587, 0.114])
    assert between.mean() >= 0.15, f"no cavity between the rows: {between.mean():.2f} of the opening's midline"
    assert luma[between].max() <= 0.8 * luma[upper].mean(), "the cavity and tongue as light as the upper row"
    assert lower.mean() <= 0.45, f"the lower row fills {lower.mean():.2f} of the opening's midline"


def test_the_lower_teeth_stay_just_behind_the_lower_lip_and_the_tongue_stays_back(results):
    """deform.interior_glide: real lower incisors sit just behind the lower lip as the jaw opens (the mandible glides
    forward as it turns). Turned about the hinge alone the lower row went ~8 mm back while the lower lip went back
    ~3 mm: at a blendshape-only jawOpen 0.3 it sat 16.6 / 18.4 mm behind the lower inner lip (business_person /
    lp_d8_man_glasses; 11.2 at rest; jawOpen 0.6 24.7 / 29.9), and seen from above the photo's camera more of its
    grey face showed over the lip (4.4 mm, where a talking mouth shows ~2.6). The lower row (bary[:, 1] = 1,
    mouth.jaw_binding) now glides forward with the lip: 11.6 / 11.7 at 0.3, 12.0 / 12.1 at 0.6 (bound: rest + 1.5
    mm). The tongue, on the same jaw level, glides too since session 42 (MouthConfig.tongue_depth_m: without it a
    wide opening took it behind the back wall, 62.9 / 66.6 mm behind the lip at jawOpen 1.0), set deeper so that it
    stays at least as far back as at rest at a talking opening (24.9 / 24.9 mm behind the lip at 0.3, 24.0 / 23.8 at
    rest; before: 25.9 / 27.7 and 20.0 / 19.8; gliding it from 11 mm brought it forward between the rows, then as
    maroon lip, session 22). At jawOpen 0.6 the row may stand 2 mm further back than at rest: since
    DriveConfig.lower_teeth_show_m went 5 -> 2 mm (tongue62, session 62) the wide opening turns it further, down
    behind the lip (13.0 / 13.2 mm behind it, 11.3 / 11.3 at rest; 12.0 / 12.3 before), where less of its face
    shows over the lip."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    cfg = MouthConfig()
    for name in ("business_person.png", "lp_d8_man_glasses.jpg"):  # closed-mouth photos: synthetic rows
        a = results[name].avatar
        v, scale, w = a.template_vertices, disc_width(a), a.bary[:, 0]
        mid = (a.part == PART_MOUTH) & (np.abs(a.means[:, 0] - 0.5 * (v[lmk.MOUTH_CORNER_R_IN, 0]
                                                                     + v[lmk.MOUTH_CORNER_L_IN, 0])) < 0.003) & (w > 0)
        lower = mid & np.isclose(scale, 0.7 * cfg.teeth_spacing_m, rtol=0.02)
        tongue = mid & np.isclose(scale, 0.75 * cfg.tongue_spacing_m, rtol=0.02)
        assert lower.sum() > 10 and tongue.sum() > 10, f"{name}: {lower.sum()} / {tongue.sum()} rows at the midline"
        drv = Driver(a)

        def behind(jaw_open):  # metres behind the deformed lower inner lip: the lower row's, the tongue's (medians)
            c = FaceControl(blendshape_names=["jawOpen"], blendshapes=np.array([jaw_open], np.float32))
            z, lip = drv.drive(c).means[:, 2], drv.deformed_template(c)[0][lmk.LOWER_LIP_IN, 2]
            return float(np.median(z[lower]) - lip), float(np.median(z[tongue]) - lip)

        (row0, tongue0), (row3, tongue3), (row6, _) = behind(0.0), behind(0.3), behind(0.6)
        assert row3 <= row0 + 0.0015 and row6 <= row0 + 0.002, \
            f"{name}: the lower row {1000 * row3:.1f} / {1000 * row6:.1f} mm behind the lip at jawOpen 0.3 / 0.6 " \
            f"({1000 * row0:.1f} at rest)"
        assert tongue3 >= tongue0, f"{name}: the tongue came forward, {1000 * tongue3:.1f} mm behind the lip " \
            f"({1000 * tongue0:.1f} at rest)"


def test_a_wide_opening_shows_the_mouth_not_the_head_s_inside(results):
    """MouthConfig.cavity_back_m: at a wide opening (a blendshape-only jawOpen 0.6 at the photo's own pose) the mouth
    interior alone (every other part's opacity 0) covers the inner lips' polygon: at most 0.01 of it below 0.9
    alpha. The cavity's band across the lip line turns by its levels' shares of the jaw, rows of one disc size
    fanned apart, and the head's inside showed between them (a grey band under the upper teeth on business_person
    x sadtalker_WDA_KatieHill frame 168). Before the back wall: business_person 0.064, lp_d8_man_glasses 0.179;
    with it 0.000 / 0.000."""
    from gaussian_head_ros.core.avatar import JAW_PARTS
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    for name in ("business_person.png", "lp_d8_man_glasses.jpg"):  # closed-mouth photos: synthetic interiors
        a = results[name].avatar
        rot, view = photo_pose(a)
        K, wd, ht = source_intrinsics(a)
        c = FaceControl(rotation=matrix_to_quat(rot).astype(np.float32), blendshape_names=["jawOpen"],
                        blendshapes=np.array([0.6], np.float32))
        drv = Driver(a)
        drv.opacities = drv.opacities * np.isin(a.part, JAW_PARTS)
        p = drv.drive(c, viewmat=view)
        out = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, wd, ht,
                        backend="cpu")
        x, _ = drv.deformed_template(c)
        q = (x[hole_loops()["mouth"]] @ quat_to_matrix(c.rotation).T) @ view[:3, :3].T + view[:3, 3]
        uv = q[:, :2] / q[:, 2:] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
        mask = np.zeros((ht, wd), np.uint8)
        cv2.fillPoly(mask, [np.round(uv).astype(np.int32)], 1)
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
        assert mask.sum() > 500, f"{name}: the lips did not part ({mask.sum()} px)"
        holes = float(np.mean(out.alpha[mask] < 0.9))
        assert holes <= 0.01, f"{name}: {holes:.3f} of the opening shows through the mouth interior"


def test_the_jaws_underside_is_marked_and_turns_with_the_jaw():
    """mouth.mouth_interior with the jaw's underside (mouth.jaw_floor) on MediaPipe's canonical face (no photo;
    seconds): its Gaussians carry their own part, PART_JAW_FLOOR (before they were PART_MOUTH, told from the
    interior's by their discs' size alone), the interior's stay PART_MOUTH, and the driver turns the underside with
    the whole jaw (its jaw weight 1: the last jaw level), as it did."""
    from gaussian_head_ros.core.avatar import PART_JAW_FLOOR, PART_MOUTH
    from gaussian_head_ros.core.deform import DriveConfig, build_rig
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops

    obj = shared("canonical_face", "face_model_with_iris.obj")
    lines = obj.read_text().splitlines()
    v = np.array([ln.split()[1:4] for ln in lines if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])  # head frame: x right, y down, z into the head; metres
    faces = np.array([[int(t.split("/")[0]) - 1 for t in ln.split()[1:4]] for ln in lines if ln.startswith("f ")])
    cfg = MouthConfig()
    b = mouth_interior(v, hole_loops()["mouth"], 1.0, cfg, floor_rgb=(0.3, 0.2, 0.15))
    floor = b.part == PART_JAW_FLOOR
    assert floor.sum() > 50 and np.all((b.part == PART_MOUTH) | floor)
    sigma = b.scales.max(1)
    assert np.allclose(sigma[floor], 0.75 * cfg.jaw_floor_spacing_m, rtol=1e-3)
    assert not np.isclose(sigma[~floor], 0.75 * cfg.jaw_floor_spacing_m, rtol=1e-3).any()
    dcfg = DriveConfig()
    rig = build_rig(b.part, np.full(len(b), -1), b.bary, b.means, v, faces, dcfg)
    assert np.all(rig.frame[floor] == rig.k_jaw + max(2, int(dcfg.levels)) - 1), "the jaw's underside left the jaw"


def test_the_synthetic_mouth_is_shaded_like_a_mouth_not_a_block():
    """mouth.mouth_interior on MediaPipe's canonical face (no photo; seconds), teeth painted pure green so their
    light is the green channel: (1) the buccal corridor: the upper row at the inner lip corners (|u| > 0.8) takes
    at most 0.35 of its light in the middle (|u| < 0.3) (measured 0.31; before: 0.62, full-width rows ending
    against the black cavity, a grey box in a black frame); (2) its incisal edge is no ruler line: the edge at
    the corners at least 0.8 mm above the central incisors' (smile arc, rounded incisal corners; measured 1.1 mm, before 0);
    (3) the tongue turns with the lower row: every Gaussian below the lip line in front of the cavity wall
    has the lower row's jaw weight (before: the tongue turned with the whole jaw, sank below the lower edge and
    left a black band between the rows)."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])  # head frame: x right, y down, z into the head; metres
    cfg = MouthConfig()
    b = mouth_interior(v, hole_loops()["mouth"], 1.0, cfg, teeth_rgb=(0.0, 1.0, 0.0))
    lip_y = 0.5 * (v[13, 1] + v[14, 1])
    xl, xr = sorted((v[78, 0], v[308, 0]))  # the inner lip corners
    lip_z = np.interp(b.means[:, 0], *zip(*sorted(zip(v[hole_loops()["mouth"], 0], v[hole_loops()["mouth"], 2]))))
    depth = b.means[:, 2] - lip_z
    u = (b.means[:, 0] - 0.5 * (xl + xr)) / (0.5 * (xr - xl) - 0.002)
    upper = ((b.bary[:, 0] == 0) & (depth < cfg.teeth_depth_m + 0.0045)
             & (b.means[:, 1] > lip_y + cfg.overbite_m - cfg.teeth_height_m) & (b.means[:, 1] <= lip_y + cfg.overbite_m + 1e-6))
    g = b.colors[:, 1]
    mid, corner = upper & (np.abs(u) < 0.3), upper & (np.abs(u) > 0.8)
    assert mid.sum() > 50 and corner.sum() > 10
    ratio = g[corner].mean() / g[mid].mean()
    assert ratio <= 0.35, f"the teeth at the corners {ratio:.2f} x as lit as in the middle: a block to the corners"
    edge_mid, edge_corner = b.means[mid, 1].max(), b.means[corner, 1].max()
    assert edge_mid - edge_corner >= 0.0008, f"the incisal edge a straight line ({1000 * (edge_mid - edge_corner):.2f} mm arc)"
    front_below = (depth < cfg.cavity_depth_m - 0.003) & (b.means[:, 1] > lip_y + cfg.overbite_m + 0.0005)
    assert front_below.sum() > 100
    np.testing.assert_allclose(b.bary[front_below, 0], cfg.lower_teeth_follow, atol=1e-6,
                               err_msg="the tongue or the lower row turns apart from the lower teeth")


def test_a_teeth_config_that_cannot_be_built_is_refused_not_looped_on():
    """MouthConfig.validate: seams that do not rise (the rows continue past the last seam with the last tooth's
    width; a last pair 8.5, 8.5 looped forever in mouth._tooth_bounds, a reconstruction node hung), a single seam
    (IndexError) and a zero gap fade length (division by 0) are refused with a ValueError naming the field, when
    the config is made and when a field set later reaches mouth_interior."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops

    for bad in (dict(upper_teeth_mm=(0.0, 8.5, 8.5)), dict(lower_teeth_mm=(0.0, 6.0, 4.0)),
                dict(upper_teeth_mm=(1.0, 8.5)), dict(teeth_gap_edge_m=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MouthConfig(**bad)
    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])
    cfg = MouthConfig()
    cfg.lower_teeth_mm = (0.0,)
    with pytest.raises(ValueError, match="lower_teeth_mm"):
        mouth_interior(v, hole_loops()["mouth"], 1.0, cfg)


def test_the_synthetic_teeth_are_teeth_not_a_band():
    """mouth.mouth_interior on MediaPipe's canonical face (no photo; seconds), rendered from the front at 10 px/mm
    (teeth rgb 0.80 0.74 0.66): (1) two teeth are parted by a dark gap, a V at the incisal edge: 0.6 mm above
    the upper row's edge the seams (midline, +-8.5 mm) at most 0.75 x as light as the middles of the teeth either
    side, 3.5 mm above it at most 0.85 x, each the seam's darkest within 0.3 mm of its place (its rendered line
    lies up to ~0.5 px off the template's x: the arch and the perspective). Measured (session 55): 0.46 / 0.66 /
    0.65 and 0.67 / 0.76 / 0.76 with round discs, 0.49 / 0.67 / 0.66 and 0.68 / 0.77 / 0.78 with discs 1.4 x as
    tall (MouthConfig.teeth_disc_aspect; within 0.1 mm, as this test read before, the last went 0.81 -> 0.85, its
    bound, for a seam alike by eye); at 2092458: 0.40 / 0.66 / 0.67 and 0.63 / 0.74 / 0.76; before that: 0.85 /
    0.93 / 0.92 and 0.94 / 0.99 / 0.99, a seam painted on a grid blind to where the seams were: the rows rendered
    as one even band, lp_d8 / two_children under lp_d0 and sadtalker); (2) no two teeth alike: the two central
    incisors' light differs by at least 2 % (measured 3 %; before 0.1 %, mirror images); (3) the teeth band is
    lighter than the cavity beside it (at least 3 x) and the tongue behind lit as the operators' tongues are: its
    brightest Gaussian 0.35-0.55 x the teeth colour's luma (measured 0.43; MouthConfig.tongue_per_teeth 0.47 at its
    tip, ~0.67 x the rendered upper row: the ../shared clips' tongues 0.59-0.75 x their teeth's; sessions 21-40 held
    it at most 0.35, measured 0.30, read as a maroon band where the operator shows a pink tongue)."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])  # head frame: x right, y down, z into the head; metres
    cfg, teeth, luma = MouthConfig(), np.array([0.80, 0.74, 0.66]), np.array([0.299, 0.587, 0.114])
    b = mouth_interior(v, hole_loops()["mouth"], 1.0, cfg, teeth_rgb=teeth)
    xc, lip_y = 0.5 * (v[78, 0] + v[308, 0]), 0.5 * (v[13, 1] + v[14, 1])
    f, wd, ht = 3000.0, 640, 400  # 0.3 m in front of the lips: 10 px per mm
    vm = np.eye(4)
    vm[:3, 3] = [-xc, -lip_y, 0.3 - v[13, 2]]
    K = np.array([[f, 0, wd / 2], [0, f, ht / 2], [0, 0, 1.0]])
    lum = rasterize(b.means, b.quats, b.scales, b.opacities, b.colors, vm, K, wd, ht, backend="cpu").image @ luma

    def at(x_mm, y_mm, r=0):  # luma about (x, y) mm from the lips' middle (y down): its minimum over +-r px
        c, rr = int(round(wd / 2 + x_mm * 10)), int(round(ht / 2 + y_mm * 10))
        return lum[rr - r:rr + r + 1, c - r:c + r + 1].min()

    edge = 1000 * cfg.overbite_m  # the upper incisal edge, mm below the lip line
    for above, most in ((0.6, 0.75), (3.5, 0.85)):
        y = edge - above
        for seam, (m0, m1) in ((0.0, (-4.25, 4.25)), (8.5, (4.25, 11.75)), (-8.5, (-4.25, -11.75))):
            ratio = at(seam, y, 3) / (0.5 * (at(m0, y) + at(m1, y)))  # the seam's darkest within 0.3 mm
            assert ratio <= most, f"the seam at {seam} mm, {above} mm above the edge: {ratio:.2f} x the teeth's light"
    left, right = at(-4.25, edge - 2.0), at(4.25, edge - 2.0)
    assert abs(left - right) / (0.5 * (left + right)) >= 0.02, f"the central incisors alike: {left:.3f} / {right:.3f}"
    half = 500 * abs(v[308, 0] - v[78, 0])  # mm
    cavity = max(at(-(half + 6), 0.0), at(half + 6, 0.0))
    assert min(left, right) >= 3 * cavity, f"teeth {min(left, right):.2f} not lighter than the cavity {cavity:.2f}"
    tongue = np.isclose(disc_width(b), 0.75 * cfg.tongue_spacing_m, rtol=1e-3)  # the tongue's discs
    assert tongue.sum() > 100
    lit = float((b.colors[tongue] @ luma).max() / (teeth @ luma))
    assert 0.35 <= lit <= 0.55, f"the tongue {lit:.2f} x as light as the teeth"


def test_the_lower_teeth_are_parted_by_thin_seams_and_the_tongue_is_rose():
    """mouth.mouth_interior on MediaPipe's canonical face (no photo; seconds), the lower row alone rendered from the
    front at 10 px/mm (teeth rgb 0.80 0.74 0.66): (1) its seams (midline, +-5.3 mm) are lines between teeth, not
    dark columns: 0.6 mm below its edge each at least 0.6 x as light as the middles of the teeth either side, 2 mm
    below at least 0.68 x (MouthConfig.lower_teeth_seam 0.5, a photo that does not show its rows in shade
    (shaded=False): 0.69 / 0.86 / 0.85 and 0.76 / 0.91 / 0.90; before,
    the upper row's seams on the narrow lower incisors: 0.49 / 0.81 / 0.79 and 0.58 / 0.88 / 0.87, grey blocks with
    big seams at tpsmm_driving frame 20 and sadtalker's laugh), and still parted: the midline at most 0.9 x; (2) the
    tongue is rose, not brick: its lit tip's blue at least its green (before 0.25 < 0.26)."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])  # head frame: x right, y down, z into the head; metres
    cfg, teeth, luma = MouthConfig(), np.array([0.80, 0.74, 0.66]), np.array([0.299, 0.587, 0.114])
    b = mouth_interior(v, hole_loops()["mouth"], 1.0, cfg, teeth_rgb=teeth, shaded=False)
    row = (np.isclose(b.bary[:, 0], cfg.lower_teeth_follow)
           & np.isclose(disc_width(b), 0.7 * cfg.teeth_spacing_m, rtol=1e-3))  # the lower row's discs
    assert row.sum() > 200
    xc, lip_y = 0.5 * (v[78, 0] + v[308, 0]), 0.5 * (v[13, 1] + v[14, 1])  # its edge at the lip line
    f, wd, ht = 3000.0, 640, 400  # 0.3 m in front of the lips: 10 px per mm
    vm = np.eye(4)
    vm[:3, 3] = [-xc, -lip_y, 0.3 - v[13, 2]]
    K = np.array([[f, 0, wd / 2], [0, f, ht / 2], [0, 0, 1.0]])
    lum = rasterize(b.means[row], b.quats[row], b.scales[row], b.opacities[row], b.colors[row], vm, K, wd, ht,
                    backend="cpu").image @ luma

    def at(x_mm, y_mm, r=0):  # luma about (x, y) mm from the lips' middle (y down): its minimum over +-r px
        c, rr = int(round(wd / 2 + x_mm * 10)), int(round(ht / 2 + y_mm * 10))
        return lum[rr - r:rr + r + 1, c - r:c + r + 1].min()

    for below, least in ((0.6, 0.6), (2.0, 0.68)):
        for seam, (m0, m1) in ((0.0, (-2.65, 2.65)), (5.3, (2.65, 8.25)), (-5.3, (-2.65, -8.25))):
            ratio = at(seam, below, 1) / (0.5 * (at(m0, below) + at(m1, below)))
            assert ratio >= least, f"the lower seam at {seam} mm, {below} mm below the edge: {ratio:.2f} x the teeth's light"
            if seam == 0.0:
                assert ratio <= 0.9, f"the lower central incisors not parted ({ratio:.2f})"
    tongue = np.isclose(disc_width(b), 0.75 * cfg.tongue_spacing_m, rtol=1e-3)
    tip = b.colors[tongue][np.argmax(b.colors[tongue] @ luma)]
    assert tip[2] >= tip[1], f"the tongue brick red, not rose: {tip.round(3)}"


def test_a_photo_without_shaded_rows_gets_a_lower_row_lit_over_its_crown():
    """mouth.mouth_interior on MediaPipe's canonical face (no photo; seconds), the lower row alone from the front at
    10 px/mm (teeth rgb 0.80 0.74 0.66), the middles of its central incisors: a photo that does not show its own
    rows in shade (shaded=False: closed lips, its own lit bite) gets a lower row lit over its crown, its shadow
    falling towards the gum quadratically (MouthConfig.lower_teeth_lit): 4 mm below the edge at least 1.12 x the
    shaded row's (measured at lit 0.62 0.436 / 0.368 = 1.18; at 0.75, teeth22, 1.38), and still darker at its gum
    (8 mm: at most 0.93 x its light 2 mm below the edge; measured 0.90 with MouthConfig.lit_lower_teeth_shadow 0.25,
    session 41 (mouth41b: a wide opening showed the crowns grey towards the gum); 0.66, 0.65 with the shaded look's
    0.6, when the bound was 0.8). (teeth21 also held the edge within 1.1 x the
    shaded row's, 1.05 at 0.62: at 0.75 the whole row is lit, 1.24; how lit the lower row may be against the upper
    one is test_the_lower_teeth_sit_in_the_shade's.) A shaded photo (lips parted over shaded teeth,
    sadtalker's frame 0) keeps lower_teeth_light and the linear shadow: its frame 0 as before. Before (one lower
    row for every photo, lit 0.6 and linear) tpsmm_driving's openings and sadtalker's laugh showed grey blocks."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])  # head frame: x right, y down, z into the head; metres
    cfg, teeth, luma = MouthConfig(), np.array([0.80, 0.74, 0.66]), np.array([0.299, 0.587, 0.114])
    xc, lip_y = 0.5 * (v[78, 0] + v[308, 0]), 0.5 * (v[13, 1] + v[14, 1])  # the lower row's edge at the lip line
    f, wd, ht = 3000.0, 640, 400  # 0.3 m in front of the lips: 10 px per mm
    vm = np.eye(4)
    vm[:3, 3] = [-xc, -lip_y, 0.3 - v[13, 2]]
    K = np.array([[f, 0, wd / 2], [0, f, ht / 2], [0, 0, 1.0]])
    light = {}
    for shaded in (True, False):
        b = mouth_interior(v, hole_loops()["mouth"], 1.0, cfg, teeth_rgb=teeth, shaded=shaded)
        row = (np.isclose(b.bary[:, 0], cfg.lower_teeth_follow)
               & np.isclose(disc_width(b), 0.7 * cfg.teeth_spacing_m, rtol=1e-3))  # the lower row's discs
        lum = rasterize(b.means[row], b.quats[row], b.scales[row], b.opacities[row], b.colors[row], vm, K, wd, ht,
                        backend="cpu").image @ luma
        light[shaded] = {y: float(np.mean([lum[int(round(ht / 2 + y * 10)), int(round(wd / 2 + x * 10))]
                                           for x in (-2.65, 2.65)])) for y in (0.6, 2.0, 4.0, 8.0)}
    lit, shade = light[False], light[True]
    assert lit[4.0] >= 1.12 * shade[4.0], f"the lit row's crown {lit[4.0]:.3f} vs the shaded {shade[4.0]:.3f}"
    assert lit[8.0] <= 0.93 * lit[2.0], f"the lit row not shaded towards its gum: {lit[8.0]:.3f} / {lit[2.0]:.3f}"


def test_a_photo_without_shaded_rows_smiles_with_crowns_lit_to_the_lip_and_thin_seams():
    """mouth.mouth_interior on MediaPipe's canonical face (no photo; seconds), the upper row alone rendered from the
    front at 10 px/mm (teeth rgb 0.80 0.74 0.66). A photo that does not show its own rows in shade (shaded=False)
    gets the lit look (MouthConfig.lit_*): (1) thin seams: 3.5 mm above the incisal edge each seam (midline,
    +-8.5 mm) at least 0.85 x as light as the middles of the teeth either side (measured 0.88 / 0.94 / 0.95;
    before 0.68 / 0.79 / 0.81: dark seams over the whole crown at lp_d0's closed-bite smiles), still parted at the
    edge (0.6 mm up at most 0.75 x: 0.52 / 0.71 / 0.70); (2) a crown lit up to the lip: 9 mm above the edge the
    central incisors at least 0.85 x their light 2 mm above it (0.91; before 0.52, the gum of a 9 mm crown: a
    dark band over the teeth where a smile raises the upper lip). A shaded photo (sadtalker's frame 0, its lips
    parted over shaded rows) keeps the shaded look: its gum still at 9 mm (at most 0.6 x)."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, mouth_interior
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float) * 0.01
    v = v * np.array([1.0, -1.0, -1.0])  # head frame: x right, y down, z into the head; metres
    cfg, teeth, luma = MouthConfig(), np.array([0.80, 0.74, 0.66]), np.array([0.299, 0.587, 0.114])
    xc, lip_y = 0.5 * (v[78, 0] + v[308, 0]), 0.5 * (v[13, 1] + v[14, 1])
    f, wd, ht = 3000.0, 640, 400  # 0.3 m in front of the lips: 10 px per mm
    vm = np.eye(4)
    vm[:3, 3] = [-xc, -lip_y, 0.3 - v[13, 2]]
    K = np.array([[f, 0, wd / 2], [0, f, ht / 2], [0, 0, 1.0]])
    edge = 1000 * cfg.overbite_m  # the upper incisal edge, mm below the lip line
    crown = {}
    for shaded in (False, True):
        b = mouth_interior(v, hole_loops()["mouth"], 1.0, cfg, teeth_rgb=teeth, shaded=shaded)
        row = (b.bary[:, 0] == 0) & np.isclose(disc_width(b), 0.7 * cfg.teeth_spacing_m, rtol=1e-3)  # upper row
        assert row.sum() > 200
        lum = rasterize(b.means[row], b.quats[row], b.scales[row], b.opacities[row], b.colors[row], vm, K, wd, ht,
                        backend="cpu").image @ luma

        def at(x_mm, y_mm, r=0):  # luma about (x, y) mm from the lips' middle (y down): its minimum over +-r px
            c, rr = int(round(wd / 2 + x_mm * 10)), int(round(ht / 2 + y_mm * 10))
            return lum[rr - r:rr + r + 1, c - r:c + r + 1].min()

        crown[shaded] = {a: float(np.mean([at(x, edge - a) for x in (-4.25, 4.25)])) for a in (2.0, 9.0)}
        if shaded:
            continue
        for above, least, most in ((3.5, 0.85, None), (0.6, None, 0.75)):
            y = edge - above
            for seam, (m0, m1) in ((0.0, (-4.25, 4.25)), (8.5, (4.25, 11.75)), (-8.5, (-4.25, -11.75))):
                ratio = at(seam, y, 1) / (0.5 * (at(m0, y) + at(m1, y)))
                assert least is None or ratio >= least, \
                    f"the seam at {seam} mm, {above} mm above the edge: {ratio:.2f} x the teeth's light, a dark column"
                assert most is None or ratio <= most, f"the teeth at {seam} mm not parted at the edge ({ratio:.2f})"
    lit, shade = crown[False], crown[True]
    assert lit[9.0] >= 0.85 * lit[2.0], f"the lit crown 9 mm up {lit[9.0]:.3f} vs 2 mm up {lit[2.0]:.3f}: the gum shows"
    assert shade[9.0] <= 0.6 * shade[2.0], f"the shaded photo's row changed: 9 mm up {shade[9.0]:.3f} / {shade[2.0]:.3f}"


def test_lips_that_meet_put_no_specks_in_the_opened_mouth():
    """business_person's inner lips meet (0 mm apart at the midline; at most MouthConfig.closed_lips_max_m): the
    few photo pixels of its inner lip polygon are the lips' seam, not the mouth's inside, so none of them becomes a
    mouth-interior Gaussian: every PART_MOUTH Gaussian is one of the synthetic cavity, rows or tongue (round discs
    of 0.7 x teeth_spacing_m, 0.75 x tongue_spacing_m, 0.75 x cavity_spacing_m or cavity_back_spacing_m (the back
    wall); the jaw's underside is
    PART_JAW_FLOOR). Before: 3 photo Gaussians (rgb
    0.67 0.22 0.29 / 0.86 0.64 0.66 / 0.51 0.11 0.15) placed as the photo's gap, 15 mm behind the lip, floated as
    a light and two red specks in every opened mouth (tpsmm_driving frames 20 / 41). Nor one of the photo's own
    opening (PART_PHOTO_MOUTH, seen at the photo's own opening: lips that meet have none)."""
    from gaussian_head_ros.core.avatar import PART_MOUTH, PART_PHOTO_MOUTH
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    av = mesh_fit_result(read_image(str(shared("portraits", "business_person.png")))).avatar
    cfg = MouthConfig()
    v = av.template_vertices
    assert v[14, 1] - v[13, 1] <= cfg.closed_lips_max_m, "business_person's lips no longer meet: pick another photo"
    m = av.part == PART_MOUTH
    assert m.sum() > 1000
    assert not np.any(av.part == PART_PHOTO_MOUTH), "the lips' seam kept as the photo's own opening"
    s = disc_width(av)[m]
    synthetic = np.zeros(len(s), bool)
    for sigma in (0.7 * cfg.teeth_spacing_m, 0.75 * cfg.tongue_spacing_m, 0.75 * cfg.cavity_spacing_m,
                  0.75 * cfg.cavity_back_spacing_m):
        synthetic |= np.isclose(s, sigma, rtol=1e-3)
    assert synthetic.all(), f"{(~synthetic).sum()} of the photo's pixels inside the mouth (lips that meet)"


def test_lips_that_meet_show_no_teeth_of_the_photo():
    """mouth.parted_over_hidden_teeth: the inner lip polygon of a closed mouth still covers a few pixels; pale lips
    there are brighter than a teeth pixel's threshold (lp_d8_man_glasses: 7 px, lips -0.17 mm apart). They are
    lip, not the photo's bite: the rule says "parted over hidden teeth" (the synthetic rows stay whole). Before
    (MouthConfig.closed_lips_max_m): False, and ~46 synthetic teeth Gaussians were cut out around those pixels,
    black dots in every opened mouth of lp_d8. A bright opening of parted lips is still the photo's bite."""
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig, parted_over_hidden_teeth

    cfg = MouthConfig()
    photo = np.full((20, 20, 3), 0.3)
    mouth_px = np.zeros((20, 20), bool)
    mouth_px[10, 6:13] = True
    photo[mouth_px] = (0.75, 0.66, 0.64)  # a pale lip: luma ~0.69 > 0.75 x skin 0.5
    assert parted_over_hidden_teeth(photo, mouth_px, 0.5, -0.00017, cfg)
    assert not parted_over_hidden_teeth(photo, mouth_px, 0.5, 0.008, cfg)  # 8 mm apart, bright: its own bite


def test_synthetic_teeth_take_the_photos_white_and_light(results):
    """A photo with closed lips gets synthetic teeth (mouth.skin_teeth_colour): under the photo's own light
    and white balance. At a 0.15 rad jaw the lit teeth seen (the brightest quarter of the pixels the mouth
    interior reaches) are no bluer than the photo's sclera (blue / red at most the sclera's + 0.2) and their
    90th-percentile luma at most the face skin's 95th percentile. Measured (b/r teeth vs sclera, p90 vs
    skin p95): business 0.83 / 1.01, 0.77 / 0.91; lp_s9_monalisa 0.61 / 0.46, 0.61 / 0.73; two_children
    0.61 / 0.88, 0.44 / 0.59; lp_d8 0.69 / 0.75, 0.41 / 0.64. Before (the skin's cast, 0.25):
    lp_s9_monalisa's teeth 0.71 / 0.46, blue-white in the painting's warm varnish."""
    from gaussian_head_ros.core.avatar import JAW_PARTS

    luma = np.array([0.299, 0.587, 0.114])
    checked = 0
    for name, res in results.items():
        teeth = res.info["teeth"]
        if teeth["source"] != "skin":
            continue  # the photo shows its own teeth: their colour is the photo's
        a = res.avatar
        seen = {}
        for dark in (False, True):  # the mouth interior black: which pixels its light reaches
            jaw = np.isin(a.part, JAW_PARTS)
            out, mask = _open_jaw(a, 0.15) if not dark else _open_jaw(_without_light(a, jaw), 0.15)
            seen[dark] = out.image
        px = seen[False][np.abs(seen[False] - seen[True]).sum(-1) > 0.15]
        assert len(px) > 100, f"{name}: no mouth interior seen at a 0.15 rad jaw"
        lum = px @ luma
        lit = np.median(px[lum >= np.percentile(lum, 75)], 0)
        sclera = np.asarray(teeth["sclera_rgb"])
        white = sclera[np.argmax(sclera @ luma)]
        assert lit[2] / lit[0] <= white[2] / white[0] + 0.2, f"{name}: teeth {lit.round(2)} bluer than the sclera {white.round(2)}"
        assert np.percentile(lum, 90) <= teeth["skin_luma_p95"], f"{name}: teeth brighter than the face's bright skin"
        checked += 1
    assert checked >= 3, "fewer than 3 portraits with synthetic teeth"


def _without_light(avatar, sel):
    """A copy of avatar whose Gaussians `sel` [N] bool are black (SH DC of rgb 0, higher bands 0)."""
    from dataclasses import replace

    from gaussian_head_ros.core.avatar import rgb_to_sh_dc

    sh = np.array(avatar.sh, copy=True)
    sh[sel] = 0.0
    sh[sel, 0] = rgb_to_sh_dc(np.zeros((int(sel.sum()), 3)))
    return replace(avatar, sh=sh)


def test_the_mouth_interior_stays_behind_the_chin(results):
    """Driven by a real talking clip (sadtalker, tracked from its first frame as tracker_node does), the mouth
    interior shows only through the lips' opening: hiding it changes no pixel below or beside the mouth.
    MouthConfig.floor_slope: the floor of the mouth (cavity, tongue, the lower row's gum, and the photo's own
    open-mouth pixels below the lower lip) slopes back; upright it showed through two_children_multiface's chin
    as dark-red patches, up to 1557 pixels outside the opening at frame 45 (0 with the slope), and lp_d9's
    scream interior through its chin (534 pixels at frame 45; 305 with the synthetic floor alone, 0 with both)."""
    from gaussian_head_ros.core.control import line_of_sight_rotation, quat_to_matrix
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(shared("driving", "sadtalker_WDA_KatieHill_000.mp4")), max_frames=46)
    h, w = frames[0].rgb.shape[:2]
    K = default_intrinsics(w, h, 12.0)
    with FaceTracker(TrackerConfig(fov_deg=12.0)) as tracker:
        controls = [tracker.process(f.rgb, f.stamp_ns, K) for f in frames]
    loop = hole_loops()["mouth"]
    for name, i in (("two_children_multiface.jpeg", 12), ("two_children_multiface.jpeg", 45),  # talking smile; wide
                    ("lp_d9_woman_turned.jpg", 45)):
        a = results[name].avatar
        with_mouth = Driver(a)
        opacities = a.logit_opacities.copy()
        a.logit_opacities[_interior(a)] = -30.0  # not the jaw's underside (skin)
        try:
            without = Driver(a)
        finally:
            a.logit_opacities[:] = opacities
        c = controls[i]
        assert c is not None and c.face_detected
        d = np.abs(render_control(with_mouth, c, K, w, h).image - render_control(without, c, K, w, h).image).max(-1)
        v, _ = with_mouth.deformed_template(c)
        cam = (quat_to_matrix(c.rotation) @ v[loop].T).T @ line_of_sight_rotation(c.translation).T + c.translation
        uv = (cam @ K.T)[:, :2] / cam[:, 2:]
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [np.round(uv).astype(np.int32)], 1)
        outside = ~cv2.dilate(opening, np.ones((9, 9), np.uint8)).astype(bool)
        assert opening.sum() > 100, f"{name} frame {i}: the lips did not part"
        shown = int((d[outside] > 0.1).sum())
        assert shown <= 20, f"{name} frame {i}: the mouth interior shows through the skin at {shown} pixels"


def test_parted_lips_show_the_upper_teeth(results):
    """A speaking jaw (turned 0.08 rad, the lower lip with it) shows the upper incisors under the upper lip:
    they sit `overbite_m` below the lip line. With both rows ending at the lip line the lower teeth turned
    away behind the lower lip and the opening was a dark slit (the independent reader took it for a closed
    mouth: tpsmm_driving on business_person, jaw r 0.33)."""
    res = results["business_person.png"]  # closed mouth in the photo: synthetic teeth
    out, mask = _open_jaw(res.avatar, 0.08)
    mask = mask.astype(bool)
    assert mask.sum() > 50, "the lips did not part"
    upper = mask & (np.arange(mask.shape[0])[:, None] < np.median(np.nonzero(mask)[0]))  # under the upper lip
    skin = np.median(res.photo[res.mask] @ np.array([0.299, 0.587, 0.114])) / 255
    bright = np.mean(out.image[upper] @ np.array([0.299, 0.587, 0.114]) > 0.8 * skin)
    # teeth (1.2 x the skin's luma) in most of it; measured 0.65 (before: 0.37, the lower lip's edge only)
    assert bright > 0.5, f"no teeth under the upper lip: {bright:.2f} of the opening's upper half bright"


def _teeth_under_the_photos_upper_lip(res):
    """The photo's upper lip over a closed jaw (its expression above the lip line, the rest template below):
    -> fraction of the opening between the lips that is brighter than 0.8 x the photo's skin (teeth)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.reconstruct.template import hole_loops
    from gaussian_head_ros.core.render import rasterize

    a = res.avatar
    v = a.template_vertices.astype(np.float64)
    expr = res.expression * (v[:, 1] < 0.5 * (v[13, 1] + v[14, 1]))[:, None]  # the upper lip and above only
    c = FaceControl.rest()
    c.expression = expr.astype(np.float32)
    p = Driver(a).drive(c)
    K, wd, ht = source_intrinsics(a)
    vm = a.source_camera.viewmat
    img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, vm, K, wd, ht, backend="cpu").image
    pts = (v + expr)[hole_loops()["mouth"]] @ vm[:3, :3].T + vm[:3, 3]
    uv = pts[:, :2] / pts[:, 2:] * K[0, 0] + K[:2, 2]
    mask = np.zeros((ht, wd), np.uint8)
    cv2.fillPoly(mask, [np.round(uv).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
    skin = np.median(res.photo[res.mask] @ np.array([0.299, 0.587, 0.114])) / 255
    return float(np.mean(img[mask] @ np.array([0.299, 0.587, 0.114]) > 0.8 * skin)), int(mask.sum())


def test_a_parted_lips_photo_bites_with_teeth_not_its_gap():
    """sadtalker's frame 0: lips parted 8.6 mm over a dark gap, its teeth a shaded sliver. That gap is the
    photo's expression: with its upper lip as in the photo and the jaw closed (a broad smile's bite), the
    opening shows teeth (the synthetic rows stand in front of the photo's gap pixels). Measured 0.94 bright;
    before: 0.78, a dark band with brown tooth fragments across the bite."""
    from gaussian_head_ros.core.video import read_frames

    res = mesh_fit_result(read_frames(str(shared("driving", "sadtalker_WDA_KatieHill_000.mp4")), max_frames=1)[0].rgb)
    bright, n = _teeth_under_the_photos_upper_lip(res)
    assert n > 50, "the photo's upper lip does not open the mouth"
    assert bright > 0.85, f"{bright:.2f} of the opening bright"


def _mouth_painted_by_origin(a):
    """The avatar's mouth (PART_MOUTH and PART_PHOTO_MOUTH) painted by where it comes from: ([N, K, 3] SH, DC green on
    the synthetic interior's discs (their sizes: 0.7 x teeth_spacing_m, 0.75 x tongue / cavity / cavity_back spacing),
    magenta on the photo's own, bands above 0 zeroed there; [N] bool mouth; [N] bool synthetic)."""
    from gaussian_head_ros.core.avatar import PART_MOUTH, PART_PHOTO_MOUTH
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    cfg, scale = MouthConfig(), disc_width(a)
    synthetic = np.zeros(len(scale), bool)
    for size in (0.7 * cfg.teeth_spacing_m, 0.75 * cfg.tongue_spacing_m, 0.75 * cfg.cavity_spacing_m,
                 0.75 * cfg.cavity_back_spacing_m):
        synthetic |= np.isclose(scale, size, rtol=0.02)
    mouth = np.isin(a.part, (PART_MOUTH, PART_PHOTO_MOUTH))
    sh = a.sh.copy()
    sh[mouth & synthetic, 0] = (np.array([0.0, 1.0, 0.0]) - 0.5) / 0.28209479177387814
    sh[mouth & ~synthetic, 0] = (np.array([1.0, 0.0, 1.0]) - 0.5) / 0.28209479177387814
    sh[mouth, 1:] = 0.0
    return sh, mouth, synthetic


def test_a_parted_lips_photo_opened_shows_its_synthetic_mouth_not_its_gap():
    """sadtalker's frame 0 again, its mouth opened wider (a blendshape-only jawOpen 0.5 at the photo's pose): the
    opening is the synthetic interior's (teeth, cavity, tongue), not the photo's own opening pixels. Those pixels (its
    shaded sliver of upper teeth on the teeth surface, its dark gap behind it) stayed under the synthetic upper row's
    edge and drew a dim olive-gold streak over a dark band in every wider opening (self sadtalker frames 29 / 100 /
    168, where the operator shows white teeth and a pink tongue): before, 0.15 of the opened mouth's pixels showed
    them (found by painting them); now none (mesh_fit keeps a parted-lips photo's opening pixels for its own opening
    only, avatar.PART_PHOTO_MOUTH; session 42-43 left them out)."""
    import dataclasses

    from gaussian_head_ros.core.video import read_frames

    frame0 = read_frames(str(shared("driving", "sadtalker_WDA_KatieHill_000.mp4")), max_frames=1)[0].rgb
    a = mesh_fit_result(frame0).avatar
    render = _jaw_open_render(a, 0.5)
    sh, mouth, synthetic = _mouth_painted_by_origin(a)
    painted = render(dataclasses.replace(a, sh=sh))
    interior = (painted[..., 1] > 0.6) & (painted[..., 0] < 0.4)
    photo_own = (painted[..., 0] > 0.6) & (painted[..., 2] > 0.6) & (painted[..., 1] < 0.4)
    assert interior.sum() > 500, f"the mouth did not open ({interior.sum()} px)"
    share = photo_own.sum() / (photo_own.sum() + interior.sum())
    assert share < 0.01, f"{share:.2f} of the opened mouth shows the photo's own opening"


@pytest.mark.parametrize("name", ["obama_speech.jpg", "lp_d9_woman_turned.jpg"])
def test_a_wide_open_photo_talks_with_the_synthetic_mouth_and_shows_its_own_at_its_own_opening(results, name):
    """avatar.PART_PHOTO_MOUTH, deform.photo_mouth_share: a photo whose mouth is wide open (obama_speech's lips 20.7 mm
    apart, lp_d9_woman_turned's 42.6) kept its opening's pixels (teeth, tongue, dark) turned with the jaw at every
    opening, in front of the synthetic rows: a second row of teeth under the upper one, blocks of her tongue with the
    cavity's dark between them (sadtalker_WDA_KatieHill frames 30 / 168, lp_d18 66 / 114 / 132). At talking openings
    (blendshape-only jawOpen 0.2 / 0.35 / 0.5 at the photo's pose) the opening is the synthetic interior's: before,
    0.99 / 0.91 / 0.61 (obama_speech) and 1.0 / 1.0 / 0.93 (lp_d9) of the opened mouth's pixels showed the photo's own
    (found by painting them); now none. The photo's own
    control still shows them, whole (its photo back: test_the_photos_expression_reproduces_the_photo), and at rest its
    crowns on the lips' triangles no longer draw a white line between the closed lips."""
    import dataclasses

    from gaussian_head_ros.core.avatar import PART_PHOTO_MOUTH
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose

    res = results[name]
    a = res.avatar
    sh, mouth, synthetic = _mouth_painted_by_origin(a)
    shares = []
    for jaw_open in (0.2, 0.35, 0.5):
        painted = _jaw_open_render(a, jaw_open)(dataclasses.replace(a, sh=sh))
        interior = (painted[..., 1] > 0.6) & (painted[..., 0] < 0.4)
        photo_own = (painted[..., 0] > 0.6) & (painted[..., 2] > 0.6) & (painted[..., 1] < 0.4)
        assert interior.sum() + photo_own.sum() > 150, f"jawOpen {jaw_open}: the mouth did not open"
        shares.append(round(float(photo_own.sum() / (photo_own.sum() + interior.sum())), 3))
    assert max(shares) < 0.01, f"{name}: share of the opened mouth showing the photo's own opening {shares}"
    own = a.part == PART_PHOTO_MOUTH
    assert own.sum() > 300 and np.all(own <= mouth & ~synthetic)
    rot, view = photo_pose(a)
    p = Driver(a).drive(FaceControl(expression=res.expression, rotation=matrix_to_quat(rot).astype(np.float32)),
                        viewmat=view)
    rest_opacity = 1 / (1 + np.exp(-a.logit_opacities[own]))
    assert np.allclose(p.opacities[own], rest_opacity, atol=1e-6), "the photo's own control hides its opening"
    # at rest no white line of the photo's crowns between the closed lips (mouth_assembly.LIP_TEETH_REACH_PX: those on
    # the lips' triangles were bound to the lips): white pixels within 3 px of the inner lip lines, obama_speech 38 -> 12
    import cv2 as cv

    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.colour import LUMA
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    vm = a.source_camera.viewmat
    K, w, h = source_intrinsics(a)
    p = Driver(a).drive(FaceControl.rest(), viewmat=vm)
    im = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, vm, K, w, h, backend="cpu").image
    v = a.template_vertices.astype(np.float64) @ vm[:3, :3].T + vm[:3, 3]
    uv = np.stack([K[0, 0] * v[:, 0] / v[:, 2] + K[0, 2], K[1, 1] * v[:, 1] / v[:, 2] + K[1, 2]], 1)
    band = np.zeros((h, w), np.uint8)
    for line in (lmk.LIP_UPPER_INNER, lmk.LIP_LOWER_INNER):
        ends = [lmk.MOUTH_CORNER_R_IN, *line, lmk.MOUTH_CORNER_L_IN]
        cv.polylines(band, [np.round(uv[ends]).astype(np.int32)], False, 1, 7)
    sat = (im.max(-1) - im.min(-1)) / np.maximum(im.max(-1), 1e-6)
    white = int(((im @ LUMA > 0.55) & (sat < 0.3) & band.astype(bool)).sum())
    assert white <= 20, f"{name}: {white} white px between the closed lips at rest"


def _interior(avatar) -> np.ndarray:
    """[N] bool: the mouth interior's Gaussians (teeth, cavity, tongue, the photo's open-mouth pixels): PART_MOUTH and
    PART_PHOTO_MOUTH (not the jaw's underside, PART_JAW_FLOOR: skin that turns with the jaw and may show where the
    chin's skin is thin, as the head's back behind it did, in the same shade)."""
    from gaussian_head_ros.core.avatar import PART_MOUTH, PART_PHOTO_MOUTH

    return np.isin(avatar.part, (PART_MOUTH, PART_PHOTO_MOUTH))


def _mouth_pixels(avatar, control):
    """Pixels of the source view where the mouth interior (teeth, cavity, tongue; `_interior`) shows, and the render
    (colours seen from the source camera: the view-dependent ones, builder.edge_on_sh, as that camera sees them)."""
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    vm = avatar.source_camera.viewmat
    p = Driver(avatar).drive(control, viewmat=vm)
    K, w, h = source_intrinsics(avatar)

    def draw(colors):
        return rasterize(p.means, p.quats, p.scales, p.opacities, colors, vm, K, w, h, backend="cpu").image

    marked = p.colors.copy()
    marked[_interior(avatar)] = (1.0, 0.0, 1.0)
    diff = np.abs(draw(marked) - draw(p.colors)).sum(-1)
    return diff > 0.3, draw(p.colors)


def test_a_closed_mouth_closes_an_open_mouth_photo(results, frames_closed_and_photo):
    """The tracker's control of a relaxed, closed-mouth face hides the whole mouth interior of an avatar made
    from a talking, open-mouth photo (the lips meet over its teeth); the tracker's control of the photo
    itself opens it again and gives the photo back (frame-0 consistency)."""
    from gaussian_head_ros.core.metrics import psnr

    res = results["obama_speech.jpg"]
    closed, own = frames_closed_and_photo
    shown_closed, _ = _mouth_pixels(res.avatar, closed)
    shown_own, img = _mouth_pixels(res.avatar, own)
    assert res.info["expression_removed_mm"] > 10 and res.info["photo_jaw_deg"] > 5
    assert shown_own.sum() > 500, "the photo's own control does not open the mouth"
    assert shown_closed.sum() < 0.02 * shown_own.sum(), f"{shown_closed.sum()} mouth pixels show with the mouth closed"
    assert psnr(img, res.photo.astype(np.float32) / 255, res.mask) >= 30.0


def test_a_screaming_photo_rests_with_closed_lips_and_skin_below(results):
    """lp_d9_woman_turned screams (a 44 mm opening). MediaPipe's mesh folds below her wide-open lower lip, so
    lower-lip and shadow pixels were bound to chin triangles, which the rest pose unfolds into a 2-3x taller
    pink and brown band, and her tongue poked through the closed chin: at rest the reader read an open mouth
    (jawOpen 0.78; her jaw r driven by lp_d0 was -0.89). At rest (lips.closed_lips): the chin between the lower
    lip and the chin point shows skin (measured before: 54 % of it nearer the lip colour than the skin's, 49 %
    darker than 0.7 x the face's skin; then 4 % and 0 %; session 23: 1 % lip-coloured, 12 % darker than 0.7 x the
    lower face's skin, below), and none of the mouth interior shows (418 px before, 13 now)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.reconstruct.lighting import skin_triangle_mask
    from gaussian_head_ros.core.reconstruct.lips import lip_triangles
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.reconstruct.surfaces import rasterize_mesh

    res = results["lp_d9_woman_turned.jpg"]
    a = res.avatar
    assert res.info["lip_retextured"] > 100 and res.info["lip_fill"] > 0
    shown, img = _mouth_pixels(a, FaceControl.rest())
    assert shown.sum() < 50, f"{shown.sum()} px of the mouth interior show at rest"
    K, w, _ = source_intrinsics(a)
    vm = a.source_camera.viewmat.astype(np.float64)
    rest = a.template_vertices.astype(np.float64)
    photo_v = rest + res.expression
    faces = a.template_faces.astype(np.int64)

    def face_ids(v):
        return rasterize_mesh(v @ vm[:3, :3].T + vm[:3, 3], faces, K.astype(np.float64), w)[0]

    c = rest[faces].mean(1)  # the chin at rest: below the lower lip's outer edge, above the chin point
    chin = ((c[:, 1] > rest[list(lmk.LIP_LOWER_OUTER), 1].max() + 0.002) & (c[:, 1] < rest[lmk.CHIN, 1] - 0.004)
            & (np.abs(c[:, 0] - rest[lmk.CHIN, 0]) < 0.015))
    fid_rest, fid_photo = face_ids(rest), face_ids(photo_v)
    chin_px = (fid_rest >= 0) & chin[np.clip(fid_rest, 0, None)]
    photo = res.photo.astype(np.float64) / 255
    upper, lower = lip_triangles(photo_v)
    lip = np.median(photo[(fid_photo >= 0) & (upper | lower)[np.clip(fid_photo, 0, None)]], 0)
    skin = np.median(photo[(fid_photo >= 0) & skin_triangle_mask()[np.clip(fid_photo, 0, None)]], 0)
    # dark against the lower face's own skin (skin triangles below the nose tip): lp_d9 is lit from her right and from
    # above, and her chin is shaded in the photo (median luma 0.47 below the nose, 0.54 over the face); the re-textured
    # chin takes the photo's shading (lips.skin_fill_map, lips.photo_places): against the whole face 0.31 of it read
    # dark where it is only her lit side's chin in that shade
    low = skin_triangle_mask() & (c[:, 1] > rest[lmk.NOSE_TIP, 1])
    low_skin = np.median(photo[(fid_photo >= 0) & low[np.clip(fid_photo, 0, None)]], 0)

    def chroma(x):
        return x / np.maximum(x.sum(-1, keepdims=True), 1e-6)

    px = img[chin_px].astype(np.float64)
    assert chin_px.sum() > 300
    lipish = np.mean(np.linalg.norm(chroma(px) - chroma(lip), axis=1) < np.linalg.norm(chroma(px) - chroma(skin), axis=1))
    dark = np.mean(px @ np.array([0.299, 0.587, 0.114]) < 0.7 * low_skin @ np.array([0.299, 0.587, 0.114]))
    assert lipish < 0.15 and dark < 0.15, f"the chin at rest: {lipish:.2f} lip coloured, {dark:.2f} dark"


def test_a_screaming_photo_rests_without_teeth_streaks_between_its_lips(results):
    """lp_d9_woman_turned's closed lips (lips.closed_lips) are its thin lips and the rim of its 44 mm opening
    stretched up to 6x. With the re-texturing starting at a stretch of 2 (full at 3) and the photo's own colour kept
    up to a streak of 1.8 (2.8), the teeth edges and rim shadow stayed as dark vertical streaks along the line
    where the lips meet, which the reader (FaceLandmarker) reads as teeth between parted lips: jawOpen on the rest
    face under tpsmm_driving's head poses averaged 0.22 (0.10 now), its jaw r driven by tpsmm_driving was 0.24
    (0.68 now; session 11). Here: the rest face in the source view turned to five head poses; the old thresholds
    give a mean jawOpen of 0.23, these 0.17. Partial: streaks remain, weaker (the closed lips still read a little
    open)."""
    from gaussian_head_ros.core.control import FaceControl, euler_to_quat
    from gaussian_head_ros.core.reader import FaceReader

    a = results["lp_d9_woman_turned.jpg"].avatar
    reads = []
    with FaceReader(str(shared("models", "face_landmarker.task")), video=False) as reader:
        for yaw, pitch in ((0, 0), (-15, 0), (15, 0), (0, -10), (0, 10)):
            c = FaceControl.rest()
            c.rotation = euler_to_quat(yaw, pitch, 0.0).astype(np.float32)
            _, img = _mouth_pixels(a, c)
            frame = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
            assert frame is not None, (yaw, pitch)
            reads.append(frame.blendshapes["jawOpen"])
    assert np.mean(reads) < 0.20, f"the closed lips read as an open jaw: {np.round(reads, 3)}"


def test_a_screaming_photo_rests_with_lips_not_a_barcode(results):
    """lp_d9_woman_turned's closed lips are its thin lips stretched 3-6x tall (lips.closed_lips: the covariance
    follows the map). The darker line where they meet was given to each Gaussian at its centre, so a disc centred
    near the line and stretched across it drew a dark vertical streak: the lips read as a red-brown barcode. Now
    the photo layer carries the line (and the lips' edge) averaged over each Gaussian's vertical extent, and discs
    along the line in front draw it crisp (lips.line_points). In the source view at
    rest, the middle half of the lips' box (+-3 mm about the line where they meet): mean |luma step| column to
    column over row to row 1.23 before (0.022 / 0.018), 0.50 now (0.010 / 0.020)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics

    a = results["lp_d9_woman_turned.jpg"].avatar
    _, img = _mouth_pixels(a, FaceControl.rest())
    K, _, _ = source_intrinsics(a)
    vm = a.source_camera.viewmat.astype(np.float64)
    v = a.template_vertices.astype(np.float64)
    line = 0.5 * (v[list(lmk.LIP_UPPER_INNER)] + v[list(lmk.LIP_LOWER_INNER)])
    c = np.concatenate([line - [0, 0.003, 0], line + [0, 0.003, 0]]) @ vm[:3, :3].T + vm[:3, 3]
    x, y = K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2], K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]
    q = 0.25 * (x.max() - x.min())
    box = img[int(y.min()):int(y.max()) + 1, int(x.min() + q):int(x.max() - q) + 1] @ np.array([0.299, 0.587, 0.114])
    assert box.shape[0] > 8 and box.shape[1] > 15, box.shape
    across, down = np.abs(np.diff(box, axis=1)).mean(), np.abs(np.diff(box, axis=0)).mean()
    assert across < 0.9 * down, f"vertical streaks in the closed lips: |step| across {across:.4f}, down {down:.4f}"


def _rest_in_source_view(avatar, zoom: int, control=None):
    """The avatar at rest (or driven by a FaceControl) in its source view rendered zoom x as large -> (image
    [zoom H, zoom W, 3], project: [M, 3] head-frame points -> (x [M], y [M]) pixels of that image)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    vm = avatar.source_camera.viewmat
    p = Driver(avatar).drive(FaceControl.rest() if control is None else control, viewmat=vm)
    K, w, h = source_intrinsics(avatar)
    K = np.asarray(K, np.float64).copy()
    K[:2] *= zoom
    img = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, vm, K.astype(np.float32), zoom * w, zoom * h,
                    backend="cpu").image

    def project(q):
        c = q @ vm[:3, :3].astype(np.float64).T + vm[:3, 3]
        return K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2], K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]

    return img, project


def test_a_screaming_photo_rests_with_its_lip_line_a_line_not_dots(results):
    """lp_d9_woman_turned's closed lips: the darker line where they meet was drawn by the synthesised layer's discs
    near it, round (0.72 mm), quasi-random, each as dark as its centre was near the line: at 4x the line read as a
    row of dots (session 19). Now overlapping discs along the line itself draw it (lips.line_points). In the
    source view at rest rendered at 4x, over the middle half of the line, each column's darkening (the median
    luma within +-3 mm of the line less its darkest): its coefficient of variation along the line was 0.28, 0.20
    now (0.19 before eyes20's detail discs); and it is drawn (mean darkening 0.077 before, 0.082 now:
    lips.LipConfig.line_shade)."""
    from gaussian_head_ros.core import landmarks as lmk

    a = results["lp_d9_woman_turned.jpg"].avatar
    img, project = _rest_in_source_view(a, 4)
    v = a.template_vertices.astype(np.float64)
    line = 0.5 * (v[list(lmk.LIP_UPPER_INNER)] + v[list(lmk.LIP_LOWER_INNER)])
    x, y = project(line)
    order = np.argsort(x)
    x, y = x[order], y[order]
    reach = 2 * np.abs(project(line + [0, 0.0015, 0])[1] - project(line)[1]).mean()  # 3 mm in pixels
    luma = img @ np.array([0.299, 0.587, 0.114])
    q = 0.25 * (x.max() - x.min())
    dark = []
    for cx in range(int(x.min() + q), int(x.max() - q) + 1):
        cy = np.interp(cx, x, y)
        col = luma[int(cy - reach):int(cy + reach) + 1, cx]
        dark.append(np.median(col) - col.min())
    dark = np.asarray(dark)
    assert len(dark) > 60, len(dark)
    assert dark.mean() > 0.05, f"no line where the lips meet: darkening {dark.mean():.3f}"
    assert dark.std() < 0.22 * dark.mean(), f"the lip line is a row of dots: variation {dark.std() / dark.mean():.3f}"


def test_a_screaming_photo_rests_without_drips_below_its_lower_lip(results):
    """lp_d9_woman_turned's lower lip, closed, is its thin lip stretched 3-6x tall (lips.closed_lips: the covariance
    follows the map); 43 of its Gaussians centred on the lip reached more than 1 mm past the lip's outer edge at 2
    standard deviations and hung onto the chin as vertical drips (session 19). Now they are shortened to reach 0.5
    mm past it at most (lips._above_lower_edge). In the source view at rest rendered at 2x, in the band 1-5 mm
    below the lower lip's outer edge over its width: mean |luma step| column to column over row to row 1.16
    before (vertical streaks), 1.01 after; column to column less the light's trend (below): 0.92 on main 856f93e,
    1.03 with session 23's skin fill."""
    from gaussian_head_ros.core import landmarks as lmk

    a = results["lp_d9_woman_turned.jpg"].avatar
    img, project = _rest_in_source_view(a, 2)
    v = a.template_vertices.astype(np.float64)
    edge = v[[lmk.MOUTH_CORNER_R, *lmk.LIP_LOWER_OUTER, lmk.MOUTH_CORNER_L]]
    x, y = project(edge)
    order = np.argsort(x)
    x, y = x[order], y[order]
    mm = np.abs(project(edge + [0, 0.001, 0])[1] - project(edge)[1]).mean()  # pixels a millimetre
    luma = img @ np.array([0.299, 0.587, 0.114])
    band = np.stack([luma[int(np.interp(cx, x, y) + mm):int(np.interp(cx, x, y) + mm) + int(4 * mm), cx]
                     for cx in range(int(x.min()), int(x.max()) + 1)], 1)  # rows down, columns across
    assert band.shape[0] >= 8 and band.shape[1] > 60, band.shape
    # across: less the light's trend along the lip (a 2 mm blur along the rows; a drip is under 1 mm wide): her chin
    # is lit on her right and shaded on her left (the band's luma 0.63 -> 0.29 across it since session 23's skin fill
    # keeps her shading), a step of ~0.003 a column that is no drip (with it: 1.22; main 1.01)
    trend = cv2.GaussianBlur(band.astype(np.float64), (0, 0), sigmaX=2 * mm, sigmaY=1e-3)
    across, down = np.abs(np.diff(band - trend, axis=1)).mean(), np.abs(np.diff(band, axis=0)).mean()
    assert across < 1.08 * down, f"vertical drips below the lower lip: |step| across {across:.4f}, down {down:.4f}"


def test_a_screaming_photo_rests_with_a_lower_lip_not_a_smear(results):
    """lp_d9_woman_turned's closed lower lip is her screaming photo's thin, wet lower lip stretched to a relaxed
    lip's height: its Gaussians were needles (0.14 x 0.9 x 2.6 mm, up to 8:1) and those that kept their photo colour
    (lip-coloured) drew the scream's bright wet rim as a pink smear along the closed lip's lower half, over a flat
    block whose lower edge followed the scream's folded mesh (12 mm below the lip line at one end, 21 mm at the
    other). Now the closed lower lip is drawn in the lip's colour down to a relaxed lip's curve, skin and the lip's
    shadow below (lips.LipConfig.lower_lip_min_m's notes), none of its Gaussians longer than 3 x its width.
    Checked: (1) the rest face Gaussians on the lower lip's triangles or in the band from the lip line to 10 mm below
    it, between the corners (not the upper lip's): their longest axis over the middle one, 8.32 at most before (98
    beyond 3:1), 3.0 now; (2) in the source view at rest, 2x, the middle half between the corners, 5 to 12 mm below
    the lip line: the share of pixels nearer the photo's lip chromaticity than its skin's and brighter than 1.1 x
    the lower lip's median luma (1 to 5 mm below the line), the smear: 0.247 before, 0.051 now (what is left is the
    lip's edge blending into the lighter skin)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.reconstruct.lighting import skin_triangle_mask
    from gaussian_head_ros.core.reconstruct.lips import lip_triangles
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.reconstruct.surfaces import rasterize_mesh

    res = results["lp_d9_woman_turned.jpg"]
    a = res.avatar
    rest = a.template_vertices.astype(np.float64)
    faces = a.template_faces.astype(np.int64)
    photo_v = rest + res.expression
    line = 0.5 * (rest[list(lmk.LIP_UPPER_INNER)] + rest[list(lmk.LIP_LOWER_INNER)])
    order = np.argsort(line[:, 0])
    lx, ly = line[order, 0], line[order, 1]
    xr, xl = rest[lmk.MOUTH_CORNER_R, 0], rest[lmk.MOUTH_CORNER_L, 0]
    m = a.means.astype(np.float64)
    below = m[:, 1] - np.interp(m[:, 0], lx, ly)
    upper, lower = lip_triangles(rest)
    fid = np.clip(a.face_id.astype(np.int64), 0, None)
    on = ((a.part == PART_FACE) & (a.face_id >= 0) & ~upper[fid]
          & (lower[fid] | ((below > 0) & (below < 0.010) & (m[:, 0] > xr) & (m[:, 0] < xl))))
    s = np.sort(np.exp(a.log_scales[on].astype(np.float64)), axis=1)
    aniso = s[:, 2] / s[:, 1]
    img, project = _rest_in_source_view(a, 2)
    K, w, _ = source_intrinsics(a)
    vm = a.source_camera.viewmat.astype(np.float64)
    fid_photo = rasterize_mesh(photo_v @ vm[:3, :3].T + vm[:3, 3], faces, np.asarray(K, np.float64), w)[0]
    f = np.clip(fid_photo, 0, None)
    photo = res.photo.astype(np.float64) / 255
    up_p, lo_p = lip_triangles(photo_v)
    lip = np.median(photo[(fid_photo >= 0) & (up_p | lo_p)[f]], 0)
    skin = np.median(photo[(fid_photo >= 0) & skin_triangle_mask()[f]], 0)

    def chroma(c):
        return c / np.maximum(c.sum(-1, keepdims=True), 1e-6)

    def band(top_m, bottom_m):  # [P, 3] pixels from top_m to bottom_m below the lip line, the middle half
        xs = np.linspace(xr + 0.25 * (xl - xr), xl - 0.25 * (xl - xr), 200)
        p = np.stack([xs, np.interp(xs, lx, ly), np.full_like(xs, rest[lmk.LIP_LOWER_OUTER[4], 2])], 1)
        u, y0 = project(p + [0, top_m, 0])
        _, y1 = project(p + [0, bottom_m, 0])
        return np.concatenate([img[int(np.ceil(a0)):int(a1) + 1, int(c)] for c, a0, a1 in zip(u, y0, y1)])

    def lipish(px):
        return (np.linalg.norm(chroma(px) - chroma(lip), axis=1) < np.linalg.norm(chroma(px) - chroma(skin), axis=1))

    luma = np.array([0.299, 0.587, 0.114])
    lip_luma = np.median(band(0.001, 0.005) @ luma)
    low = band(0.005, 0.012)
    bright = np.mean(lipish(low) & (low @ luma > 1.1 * lip_luma))
    assert aniso.max() < 3.05, f"needles on the closed lower lip: {(aniso > 3.05).sum()} longer than 3:1"
    assert bright < 0.12, f"a bright lip-coloured smear along the closed lower lip's lower half: {bright:.3f}"


def test_a_screaming_photo_rests_without_a_pale_patch_on_its_shaded_side(results):
    """lp_d9_woman_turned is lit from her right: her left cheek and jaw are in shade (~0.6 of the face's median
    luma). Her closed chin and the skin beside her closed lips are re-textured from the photo's skin fill
    (lips.skin_fill_map); its clean skin was told against the face's median, so her shaded side counted as shadow,
    was left out and filled from the lit side: a pale patch on that side with an edge where the re-texturing fades
    out (the turn sheets, session 22). Now against the skin's own tone around each pixel (LipConfig.tone_px), looked
    up where each Gaussian was in the photo (lips.photo_places). In the
    source view at rest rendered at 2x, on her shaded side from 8 mm above the lips down: the skin within 5 mm inside the
    re-textured region (colour weight >= 0.5, lips' band left out) against the skin within 5 mm outside it (weight
    < 0.1): 1.33 x as light before, 1.06 now."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.reconstruct import lips
    from gaussian_head_ros.core.reconstruct.surfaces import rasterize_mesh

    res = results["lp_d9_woman_turned.jpg"]
    a = res.avatar
    img, project = _rest_in_source_view(a, 2)
    vm = a.source_camera.viewmat.astype(np.float64)
    rest = a.template_vertices.astype(np.float64)
    faces = a.template_faces.astype(np.int64)
    _, _, w = lips._weights(rest + res.expression, rest, faces, vm[:3, :3], lips.LipConfig())
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    K, size, _ = source_intrinsics(a)
    K = np.asarray(K, np.float64).copy()
    K[:2] *= 2
    fid = rasterize_mesh(rest @ vm[:3, :3].T + vm[:3, 3], faces, K, 2 * size)[0]
    upper, lower = lips.lip_triangles(rest)
    on = fid >= 0
    f = np.clip(fid, 0, None)
    weight = np.where(on, w[f], -1.0)
    skin = on & ~(upper | lower)[f]
    inside, outside = skin & (weight >= 0.5), skin & (weight >= 0) & (weight < 0.1)
    x, y = project(rest[[lmk.NOSE_TIP, lmk.UPPER_LIP_IN, lmk.LOWER_LIP_IN]])
    mm = abs(project(rest[[lmk.UPPER_LIP_IN]] + [0, 0.001, 0])[1][0] - y[1])  # pixels a millimetre
    rows, cols = np.mgrid[:img.shape[0], :img.shape[1]]
    luma = img @ np.array([0.299, 0.587, 0.114])
    near_in = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5) < 5 * mm
    near_out = cv2.distanceTransform((~outside).astype(np.uint8), cv2.DIST_L2, 5) < 5 * mm
    side = [cols < 0.5 * (x[1] + x[2]), cols > 0.5 * (x[1] + x[2])]
    lit = [luma[skin & s & (rows > y[0])].mean() for s in side]
    shaded = side[int(np.argmin(lit))] & (rows > y[1] - 8 * mm)  # her left (the darker half), from 8 mm above the lips
    a_in, a_out = inside & near_out & shaded, outside & near_in & shaded
    assert a_in.sum() > 200 and a_out.sum() > 100, (a_in.sum(), a_out.sum())
    ratio = luma[a_in].mean() / luma[a_out].mean()
    assert ratio < 1.15, f"a pale patch on the shaded side: {ratio:.2f} x as light inside the re-textured skin"


def test_a_screaming_photo_rests_without_dark_specks_beyond_its_closed_lips_ends(results):
    """lp_d9_woman_turned's closed lips: the skin just beside them is re-textured only where the rest pose stretches
    or moves its triangles enough (lips._weights); beyond the lips' ends it does neither, so the scream's stretched
    lip corners stayed there as darker streaks and a dark speck above her left (shaded) lip end, standing out once
    the pale fill beside them was gone (session 24: the reader put that mouth corner on them). The skin within
    LipConfig.ring_m of the lips is re-textured as far as its photo colour does not fit skin (lips.near_lips). In the
    source view at rest, 2x, the skin beside the lips (near_lips >= 0.5) beyond each outer corner: its 5th
    percentile luma over its median, the darker side, 0.82 before (her left), 0.87 now."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.reconstruct import lips
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.reconstruct.surfaces import rasterize_mesh

    a = results["lp_d9_woman_turned.jpg"].avatar
    img, project = _rest_in_source_view(a, 2)
    vm = a.source_camera.viewmat.astype(np.float64)
    rest = a.template_vertices.astype(np.float64)
    faces = a.template_faces.astype(np.int64)
    K, size, _ = source_intrinsics(a)
    K = np.asarray(K, np.float64).copy()
    K[:2] *= 2
    fid = rasterize_mesh(rest @ vm[:3, :3].T + vm[:3, 3], faces, K, 2 * size)[0]
    f = np.clip(fid, 0, None)
    ring = (fid >= 0) & ~lips.lip_band()[f] & (lips.near_lips(rest, faces, 0.005)[f] >= 0.5)
    x, _ = project(rest[[lmk.MOUTH_CORNER_R, lmk.MOUTH_CORNER_L]])
    cols = np.mgrid[:img.shape[0], :img.shape[1]][1]
    luma = img @ np.array([0.299, 0.587, 0.114])
    dips = []
    for side in (cols < x.min(), cols > x.max()):
        m = ring & side
        assert m.sum() > 100, m.sum()
        dips.append(np.percentile(luma[m], 5) / np.median(luma[m]))
    assert min(dips) > 0.85, f"dark specks beyond the closed lips' ends: 5th percentile {min(dips):.3f} x the median"


def test_a_screaming_photos_opened_mouth_shows_no_specks_between_its_teeth(results):
    """lp_d9_woman_turned's photo shows its teeth and cavity wide open; mesh_fit spent single-pixel detail Gaussians
    (0.25 photo px) on their edges. Pushed behind the closed face and shown only as far as a driven jaw opens, at
    another opening and scale than the photo's, each drew a point: bright and dark specks on and between the teeth
    (session 19, at 4x). A re-textured photo's open mouth gets no detail Gaussians now (lips.without_detail).
    lp_d0's widest opening of its first 60 frames (expression only), the source view at 4x, between the driven
    inner lips: pixels off their 5x5 median by more than 0.03 luma 0.72 % before, 0.12 % now."""
    from scipy.ndimage import median_filter

    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.tracking import FaceTracker
    from gaussian_head_ros.core.video import read_frames

    with FaceTracker() as tr:
        controls = [tr.process(f.rgb, f.stamp_ns) for f in read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=60)]
    c = max((c for c in controls if c is not None and c.face_detected), key=lambda c: c.mouth_open)
    c.rotation, c.translation = np.array([1, 0, 0, 0], np.float32), np.zeros(3, np.float32)
    a = results["lp_d9_woman_turned.jpg"].avatar
    img, project = _rest_in_source_view(a, 4, c)
    x, y = project(np.asarray(Driver(a).deformed_template(c)[0], np.float64)[list(lmk.LIP_UPPER_INNER)
                                                                              + list(lmk.LIP_LOWER_INNER)])
    luma = img[int(y.min()):int(y.max()) + 1, int(x.min()):int(x.max()) + 1] @ np.array([0.299, 0.587, 0.114])
    assert luma.shape[0] > 40 and luma.shape[1] > 150, luma.shape  # the mouth is open
    specks = np.mean(np.abs(luma - median_filter(luma, size=5)) > 0.03)
    assert specks < 0.003, f"{100 * specks:.2f} % of the open mouth are specks"


@pytest.mark.parametrize("name, most", [("lp_d9_woman_turned.jpg", 0.0015), ("obama_speech.jpg", 0.0035),
                                        ("obama_official.jpg", 0.001)])
def test_open_lips_close_along_a_relaxed_lip_line_not_their_arch(results, name, most):
    """Closed pair by pair (expression.handle_targets), a wide-open mouth's inner lips met along its upper lip's
    arch: next to the corners 8.6 / 8.9 mm below the line through the middle and the inner corners on
    lp_d9_woman_turned's scream (44 mm opening), 6.1 / 6.2 mm on obama_speech (21 mm), a frown drawn in the closed
    lips. The reader (FaceLandmarker) put lp_d9's mouth corners there, 4-5 mm below the template's, and read no
    smile under any driver's smile (tpsmm_driving: render smile std 0.002 against the driver's 0.032). Now the
    sag beyond MAX_LIP_SAG_M is taken out as far as the mouth is open (fully from LIP_LINE_OPEN_M, 5 mm; session 21:
    from 15 mm, fully from 25 mm, then 1.2 mm and 3.0 mm). Closed photos are left as they were (obama_official,
    0.5 mm)."""
    from gaussian_head_ros.core import expression as E

    v = results[name].avatar.template_vertices.astype(np.float64)
    meet = 0.5 * (v[list(E.LIP_UPPER_INNER)] + v[list(E.LIP_LOWER_INNER)])  # [9] where the closed pairs meet
    cr, cl = v[E.LIP_CORNERS_INNER[0]], v[E.LIP_CORNERS_INNER[1]]
    u = (meet[:, 0] - 0.5 * (cr[0] + cl[0])) / (0.5 * (cl[0] - cr[0]))
    line = meet[4, 1] + (np.where(u < 0, cr[1], cl[1]) - meet[4, 1]) * u ** 2  # through the middle and the corners
    sag = meet[:, 1] - line
    assert sag.max() <= most, f"{name}: the closed lips sag {np.round(1000 * sag, 1)} mm below a relaxed lip line"


def test_a_screaming_photo_rests_with_its_mouth_corners_where_its_template_has_them(results):
    """The reader (FaceLandmarker) reads lp_d9_woman_turned's rest face (source view) with its mouth corners
    (61, 291, 78, 308) where the rest template has them: they were 3.6-4.8 mm lower (in mm of a face whose outer eye
    corners are 90 mm apart), on the closed lips' frown-shaped meeting line (the test above); 0.5-0.8 mm now. The
    corners' height is what the reader's smile reads: with the operator's 4 corners put on the avatar's face, its
    smile under tpsmm_driving came back to the driver's (0.13 at the driver's strongest smile, 0.01 before)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics

    a = results["lp_d9_woman_turned.jpg"].avatar
    _, img = _mouth_pixels(a, FaceControl.rest())
    with FaceReader(str(shared("models", "face_landmarker.task")), video=False) as reader:
        frame = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    assert frame is not None
    K, _, _ = source_intrinsics(a)
    vm = a.source_camera.viewmat.astype(np.float64)
    v = a.template_vertices.astype(np.float64) @ vm[:3, :3].T + vm[:3, 3]
    px = v[:, :2] / v[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    mm = np.linalg.norm(px[33] - px[263]) / 90.0
    corners = [61, 291, 78, 308]
    low = (frame.landmarks_px[corners, 1] - px[corners, 1]) / mm
    assert np.all(np.abs(low) < 2.0), f"the reader's mouth corners sit {np.round(low, 1)} mm below the template's"


def test_a_closing_lower_lip_stretches_itself_not_the_chin(results):
    """At rest an open-mouth photo's lower lip closes by stretching itself (up to LIP_STRETCH of its height):
    its outer edge and the skin below turn with the jaw only. Spread down to the chin, the closing dragged
    the lip's (and the open mouth's) colours over the chin: obama_speech at rest read as a still-open mouth
    (jawOpen 0.23 in lp_d0's frontal pose; the reader's jaw r driven by lp_d0 was -0.8)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.expression import LIP_STRETCH, RELAXED_LOWER_LIP_M

    def height(v):  # the lower lip's height at the middle: outer edge below the inner lip line
        return float(v[lmk.LIP_LOWER_OUTER[4], 1] - v[lmk.LOWER_LIP_IN, 1])

    res = results["obama_speech.jpg"]
    rest = res.avatar.template_vertices.astype(np.float64)
    photo = rest + res.expression
    # (1.09 x with settled landmarks, facemesh.FaceMesh; 1.1 x with the detector's region; 1.01 x since a parted
    # lip stretches only up to a relaxed lip's height, expression.RELAXED_LOWER_LIP_M: its 13 mm already are)
    assert height(photo) - 2e-4 < height(rest) <= (1 + LIP_STRETCH) * height(photo) + 0.001  # + the turn's share
    assert height(rest) <= max(height(photo), RELAXED_LOWER_LIP_M) + 0.001
    closed = results["business_person.png"]  # a closed mouth: the lip left as it is
    v = closed.avatar.template_vertices.astype(np.float64)
    assert height(v + closed.expression) == pytest.approx(height(v), abs=2e-4)


@pytest.mark.parametrize("name, most", [("astronaut_eileen_collins.png", 1.42), ("trump_official.png", 1.15)])
def test_a_parted_lip_photo_rests_with_lips_of_a_relaxed_height(results, name, most):
    """A photo whose lips are parted over the teeth (a smile showing them) has thin lips, pulled back; closed at rest
    by stretching them over the opening (expression.handle_targets), they rested taller than any relaxed lip and the
    reader (FaceLandmarker) read a still-open mouth: its upper + lower lip heights at the middle (0 -> 13, 14 -> 17,
    over the outer eye corners' distance) on the rest render (source view) over those on the photo, astronaut
    1.55, trump 1.20 (facing at 1 m: 1.62 / 1.19). Each lip now stretches only up to a relaxed lip's height
    (expression.RELAXED_UPPER_LIP_M / RELAXED_LOWER_LIP_M), its outer edge following beyond that: 1.28 / 1.10
    (obama_speech 1.05 -> 1.01, obama_official 1.05 -> 1.00; lp_d9_woman_turned's scream, 1.30, is left to the
    reconstructor's re-textured lips, expression.SCREAM_RATIO; session 59)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reader import FaceReader

    def lips(frame):  # upper + lower lip height at the middle over the outer eye corners' distance (pixels)
        p = frame.landmarks_px[:, :2].astype(np.float64)
        return (np.linalg.norm(p[13] - p[0]) + np.linalg.norm(p[17] - p[14])) / np.linalg.norm(p[33] - p[263])

    _, img = _mouth_pixels(results[name].avatar, FaceControl.rest())
    with FaceReader(str(shared("models", "face_landmarker.task")), video=False) as reader:
        rest = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
        photo = reader.read(read_image(str(shared("portraits", name))))
    assert rest is not None and photo is not None
    assert lips(rest) / lips(photo) < most, f"{name}: rest lips {lips(rest) / lips(photo):.2f} x the photo's"


def _corner_drop(v):
    """[468+, 3] canonical vertices -> the mouth corners' height below the lips' centre, metres (y down)."""
    from gaussian_head_ros.core import expression as E

    centre = 0.5 * (v[E.UPPER_LIP_MID] + v[E.LOWER_LIP_MID])
    return float(0.5 * (v[E.LIP_CORNERS_OUTER[0], 1] + v[E.LIP_CORNERS_OUTER[1], 1]) - centre[1])


def test_a_frowning_photo_rests_with_relaxed_mouth_corners(results):
    """lp_d8_man_glasses frowns (mouth corners 4.7 mm below the lips' centre): the avatar rests with them at
    the relaxed faces' mean height (MEAN_CORNER_DROP_M), not at the relaxed range's edge (MAX_CORNER_DROP_M,
    where its frown still read under every clip), nor past the mean as a smile is (expression.PAST_MEAN)."""
    from gaussian_head_ros.core import expression as E

    res = results["lp_d8_man_glasses.jpg"]
    rest = res.avatar.template_vertices.astype(np.float64)
    assert _corner_drop(rest + res.expression) > E.MAX_CORNER_DROP_M + 0.003  # the photo frowns
    assert _corner_drop(rest) == pytest.approx(E.MEAN_CORNER_DROP_M, abs=0.0005)


def test_a_pouting_photo_rests_with_its_lips_down_and_relaxed_lips_stay(results):
    """lp_d8_man_glasses pouts (the chin's muscle pushes the lower lip up and it the upper: FaceLandmarker's
    mouthShrugLower / Upper 0.28 / 0.21): its closed lips meet 29.5 mm below the nose tip, above the relaxed range
    (expression.MIN_UPPER_LIP_DROP_M, 31.5 mm; relaxed faces 35.3 +- 1.9). The avatar rests with them at its edge,
    both lips moved (the upper lip's outer edge too, not stretched thick) and the chin where it was (no jaw turn).
    Closed mouths within the range stay: two_children_multiface, lp_s9_monalisa, and business_person, whose closed
    smile lifts her lips to 28.2 mm (the smile's rules take it, not this)."""
    from gaussian_head_ros.core import expression as E
    from gaussian_head_ros.core import landmarks as lmk

    def meet(v):  # where the middle pair of lips meets, below the nose tip
        return float(0.5 * (v[E.UPPER_LIP_MID, 1] + v[E.LOWER_LIP_MID, 1]) - v[E.NOSE_TIP, 1])

    res = results["lp_d8_man_glasses.jpg"]
    rest = res.avatar.template_vertices.astype(np.float64)
    photo = rest + res.expression
    assert meet(photo) < E.MIN_UPPER_LIP_DROP_M - 0.0015  # the photo pouts
    # down to the range's edge (2.0 mm on the canonical landmarks), not past the relaxed mean (34.8 mm); main: 0
    assert 0.0015 < meet(rest) - meet(photo) < 0.0033, meet(rest) - meet(photo)
    # the upper lip's outer edge goes down with the lips (0.7 mm net of the frown's corners raised, which lift it 1.3
    # mm: main); with the lips' inner edges alone moved the upper lip stretched thick and its edge went up
    assert photo[lmk.UPPER_LIP_OUT, 1] + 0.0004 < rest[lmk.UPPER_LIP_OUT, 1]
    assert rest[E.CHIN] == pytest.approx(photo[E.CHIN], abs=1e-4)
    for name in ("two_children_multiface.jpeg", "lp_s9_monalisa.jpg", "business_person.png"):
        r = results[name]
        v = r.avatar.template_vertices.astype(np.float64)
        assert meet(v) == pytest.approx(meet(v + r.expression), abs=2e-4), name


def test_a_lopsided_frown_rests_level_and_a_relaxed_tilt_stays(results):
    """lp_d8_man_glasses' lopsided pursed grimace (FaceLandmarker on the photo: mouthFrownLeft / Right 0.43 / 0.34):
    its left mouth corner sits 2.3 mm lower than its right. The avatar rests with the corners level to within 1 mm
    (expression.MAX_CORNER_TILT_M, `_beyond`); the old rule moved both corners alike and kept the tilt.
    two_children_multiface's relaxed mouth keeps its own 2.0 mm tilt (anatomy: no smile or frown to the reader)."""
    from gaussian_head_ros.core import expression as E

    def tilt(v):
        return float(v[E.LIP_CORNERS_OUTER[1], 1] - v[E.LIP_CORNERS_OUTER[0], 1])

    res = results["lp_d8_man_glasses.jpg"]
    rest = res.avatar.template_vertices.astype(np.float64)
    assert tilt(rest + res.expression) > 0.002 and abs(tilt(rest)) < 0.001, tilt(rest)  # old: 2.3 mm at rest
    child = results["two_children_multiface.jpeg"]
    rest = child.avatar.template_vertices.astype(np.float64)
    assert tilt(rest + child.expression) > 0.0015 and tilt(rest) == pytest.approx(tilt(rest + child.expression), abs=2e-4)


def test_a_smiling_photo_rests_with_a_relaxed_mouth(results):
    """obama_official grins (mouth 74 mm wide, corners 11 mm above the lips' centre): the avatar rests with
    its mouth past the relaxed faces' mean width and corner height by PAST_MEAN x the relaxed range's half
    width (47.1 mm, corners at the lips' centre's height), not at the relaxed range's edge (52.5 mm, 3 mm
    above, where the grin still read under every clip) nor at the mean (its creases and cheeks still read as
    a smile there: expression.PAST_MEAN)."""
    from gaussian_head_ros.core import expression as E

    res = results["obama_official.jpg"]
    rest = res.avatar.template_vertices.astype(np.float64)
    photo = rest + res.expression
    def width(v):
        return float(v[E.LIP_CORNERS_OUTER[1], 0] - v[E.LIP_CORNERS_OUTER[0], 0])

    assert width(photo) > E.MAX_MOUTH_WIDTH_M + 0.01 and _corner_drop(photo) < E.MIN_CORNER_DROP_M - 0.005
    # the rule on these landmarks: mirrored past the relaxed means
    n = E.neutralize(photo)
    past = E.PAST_MEAN
    assert width(n) == pytest.approx(E.MEAN_MOUTH_WIDTH_M - past * (E.MAX_MOUTH_WIDTH_M - E.MEAN_MOUTH_WIDTH_M),
                                     abs=1e-4)
    assert _corner_drop(n) == pytest.approx(E.MEAN_CORNER_DROP_M + past * (E.MEAN_CORNER_DROP_M - E.MIN_CORNER_DROP_M),
                                            abs=3e-4)
    # the avatar (its template is fitted apart from the landmarks the rule reads)
    assert width(rest) < E.MEAN_MOUTH_WIDTH_M - past * (E.MAX_MOUTH_WIDTH_M - E.MEAN_MOUTH_WIDTH_M) + 0.001
    assert _corner_drop(rest) == pytest.approx(E.MEAN_CORNER_DROP_M + past * (E.MEAN_CORNER_DROP_M - E.MIN_CORNER_DROP_M),
                                               abs=0.0007)


def test_a_closed_lip_smile_rests_with_its_corners_lowered_too(results):
    """business_person smiles with closed lips: the mouth is 56 mm wide (beyond the relaxed range), its corners
    only 3.0 mm above the lips' centre (inside it). Taking out the width alone left the lift, and her avatar
    rested smiling (the reader: smile 0.33 at rest, 0.04 now). A mouth wider than relaxed takes its corners
    where a clear smile's go (expression.SMILE_CORNER_DROP_M), by its width's smile share."""
    from gaussian_head_ros.core import expression as E

    res = results["business_person.png"]
    rest = res.avatar.template_vertices.astype(np.float64)
    photo = rest + res.expression
    width = float(photo[E.LIP_CORNERS_OUTER[1], 0] - photo[E.LIP_CORNERS_OUTER[0], 0])
    share = (width - E.MAX_MOUTH_WIDTH_M) / (E.MAX_MOUTH_WIDTH_M - E.MEAN_MOUTH_WIDTH_M)
    assert 0.5 < share <= 1.0  # wider than relaxed (54.7 mm on the fitted template)
    lifted = _corner_drop(photo)
    assert E.MIN_CORNER_DROP_M < lifted < E.MEAN_CORNER_DROP_M  # lifted, but within the relaxed range
    assert _corner_drop(E.neutralize(photo)) == pytest.approx(lifted + share * (E.SMILE_CORNER_DROP_M - lifted),
                                                              abs=2e-4)
    # the avatar rests with its corners lowered past the relaxed mean (before: 2.5 mm above the lips' centre)
    assert _corner_drop(rest) > E.MEAN_CORNER_DROP_M + 0.001


def _read_rest_render(avatar):
    """The reader's (FaceLandmarker's) frame on the avatar's frontal rest render, 512 px, eyes ~170 px apart."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import render_control
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reader import FaceReader

    reader = FaceReader(str(shared("models", "face_landmarker.task")), video=False)
    try:
        K = default_intrinsics(512, 512, 12.0)
        control = FaceControl.rest()
        control.translation = np.array([0.0, 0.0, 0.09 * K[0, 0] / 170.0], np.float32)  # eyes ~170 px apart
        img = render_control(Driver(avatar), control, K, 512, 512).image
        return reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    finally:
        reader.close()


@pytest.mark.parametrize("name, bound", [("lp_d9_woman_turned.jpg", ("<", 0.25)), ("obama_official.jpg", (">", -0.77)),
                                         ("trump_official.png", (">", -0.52))])
def test_a_photo_holding_raised_or_furrowed_brows_rests_with_relaxed_brows(results, name, bound):
    """The photo's raised or furrowed brows (lp_d9_woman_turned's scream 23.9 mm above the eye corners,
    obama_official's and trump_official's 13.2 mm, canonical head) are not the avatar's rest: every rest takes the
    brows to one height (expression.REST_BROW_HEIGHT_M, `brow_excess`), and the reader (FaceLandmarker) reads the
    frontal rest render's brows (browInnerUp + browOuterUp - browDown, reader.GROUPS) as 0.51 -> 0.03 (lp_d9),
    -0.85 -> -0.66 (obama_official), -0.60 -> -0.32 (trump_official), the photo's brows kept -> this rule (80f0562;
    -0.68 / -0.43 with the old relaxed range's edge; the furrowed photos' colours keep part of the frown, as a
    grinning photo's keep part of the grin)."""
    from gaussian_head_ros.core import expression as E

    res = results[name]
    rest = res.avatar.template_vertices.astype(np.float64)
    op, value = bound
    lowered = E.brow_height(rest + res.expression) - E.brow_height(rest)  # photo -> rest (lp_d9 6.4, the others -4.3 mm)
    assert lowered > 0.004 if op == "<" else lowered < -0.0025
    # the avatar carries that shift (per brow, y down: the driver lifts a hooded photo's lids with a raise by it)
    np.testing.assert_allclose(res.avatar.rest_brow_shift, [lowered, lowered], atol=2e-5)
    seen = _read_rest_render(res.avatar)
    assert seen is not None
    assert (seen.groups["brow"] < value) if op == "<" else (seen.groups["brow"] > value), seen.groups["brow"]


@pytest.mark.parametrize("name", ["obama_official.jpg", "trump_official.png"])
def test_a_grinning_photo_rests_without_the_grin_beside_its_corners(results, name):
    """The skin just beyond a grinning photo's mouth corners (its creases) goes in with the corners when the
    grin is taken out (expression.CORNER_SKIN_*), and the corners go past the relaxed mean (PAST_MEAN), so the
    avatar at rest reads as less smiling. The reader (MediaPipe's FaceLandmarker) read obama_official's and
    trump_official's rest renders as smile 0.71 / 0.84 with the skin spread from the corners alone, 0.32 / 0.55
    with the skin held and the corners at the mean, 0.15 / 0.30 now (photos 0.94 / 0.97)."""
    from gaussian_head_ros.core import expression as E

    res = results[name]
    rest = res.avatar.template_vertices.astype(np.float64)
    photo = rest + res.expression
    n = E.neutralize(photo)
    for corner, skin in ((E.LIP_CORNERS_OUTER[0], E.CORNER_SKIN_R[0]), (E.LIP_CORNERS_OUTER[1], E.CORNER_SKIN_L[0])):
        inward = abs(n[corner, 0] - photo[corner, 0])
        assert inward > 0.004  # the grin is taken in
        assert abs(n[skin, 0] - photo[skin, 0]) == pytest.approx(inward, rel=0.05)  # the skin beside it too
    seen = _read_rest_render(res.avatar)
    assert seen is not None and seen.groups["smile"] < {"obama_official.jpg": 0.25, "trump_official.png": 0.45}[name]


@pytest.fixture(scope="module")
def frames_closed_and_photo():
    """FaceTracker controls: a relaxed, closed-mouth frame (lp_d0's first) and the obama_speech photo itself,
    each tracked from a fresh start (the photo's control is what a tracker gives on its first frame)."""
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.tracking import FaceTracker
    from gaussian_head_ros.core.video import read_frames

    out = []
    for rgb in (read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=1)[0].rgb,
                read_image(str(shared("portraits", "obama_speech.jpg")))):
        with FaceTracker() as tr:
            c = tr.process(rgb, 0)
        assert c.face_detected
        c.rotation, c.translation = np.array([1, 0, 0, 0], np.float32), np.zeros(3, np.float32)  # expression only
        out.append(c)
    return out


def test_lighting_is_recovered_from_shading():
    from gaussian_head_ros.core.drive import irradiance, sh_from_lights
    from gaussian_head_ros.core.reconstruct.lighting import estimate_lighting

    rng = np.random.default_rng(0)
    n = rng.normal(size=(4000, 3))
    n[:, 2] = -np.abs(n[:, 2])  # the front hemisphere, as a face shows it
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    true = sh_from_lights((0.4, 0.4, 0.4), [((-0.6, -0.5, -0.6), (0.9, 0.8, 0.7))])
    albedo = np.array([0.8, 0.6, 0.5])
    colors = np.clip(albedo * irradiance(n, true) * 0.7, 0, 1)
    est = estimate_lighting(n, colors)
    e_true, e_est = irradiance(n, true)[:, 0], irradiance(n, est)[:, 0]
    assert np.corrcoef(e_true, e_est)[0, 1] > 0.95
    assert irradiance(n, est).mean() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError):
        estimate_lighting(n[:10], colors[:10])


def test_photo_lighting_follows_the_skin_shading(results):
    from gaussian_head_ros.core.avatar import PART_FACE, sh_dc_to_rgb
    from gaussian_head_ros.core.drive import irradiance

    a = results["obama_official.jpg"].avatar
    face = a.part == PART_FACE
    e = irradiance(a.normals[face].astype(np.float64), a.lighting_sh).mean(1)
    luma = sh_dc_to_rgb(a.sh[face, 0]) @ np.array([0.299, 0.587, 0.114])
    assert np.corrcoef(e, luma)[0, 1] > 0.2


# ---------------------------------------------------------------------------------------------------
# refusals


def _code(rec, img):
    with pytest.raises(ReconstructionError) as e:
        rec.reconstruct(img)
    assert str(e.value) and "\n" not in str(e.value)
    return e.value.code


def test_a_face_just_below_the_minimum_is_said_to_be_below_it(rec):
    """obama_official at a quarter of its size: a face 59.x px wide against min_face_px 60. Rounded, the refusal
    read 'the face is 60 px wide, below the minimum of 60 px'."""
    from gaussian_head_ros.core.imageio import read_image

    img = read_image(str(shared("portraits", "obama_official.jpg")))
    small = cv2.resize(img, (img.shape[1] // 4, img.shape[0] // 4), interpolation=cv2.INTER_AREA)
    with pytest.raises(ReconstructionError) as e:
        rec.reconstruct(small)
    assert e.value.code == FACE_TOO_SMALL, str(e.value)
    said = re.search(r"the face is (\d+) px wide, below the minimum of ([\d.]+) px", str(e.value))
    assert said and int(said.group(1)) < float(said.group(2)), str(e.value)


def test_bad_photos_are_refused_with_a_reason(rec):
    from gaussian_head_ros.core.imageio import decode_compressed, read_image

    assert _code(rec, np.full((480, 640, 3), 127, np.uint8)) == NO_FACE
    assert _code(rec, np.zeros((10, 10, 3), np.uint8)) == BAD_IMAGE
    assert _code(rec, np.zeros((100, 100), np.uint8)) == BAD_IMAGE
    assert _code(rec, np.zeros((100, 100, 3), np.float32)) == BAD_IMAGE
    assert _code(rec, np.zeros((8000, 8000, 3), np.uint8)) == BAD_IMAGE  # never touched: calloc'd pages
    img = read_image(str(shared("portraits", "trump_official.png")))
    small = np.full((1500, 2000, 3), 90, np.uint8)
    small[900:950, 700:750] = cv2.resize(img, (50, 50), interpolation=cv2.INTER_AREA)  # a face ~28 px wide
    assert _code(rec, small) in (FACE_TOO_SMALL, NO_FACE)
    mid = np.full((1500, 2000, 3), 90, np.uint8)
    mid[900:980, 700:780] = cv2.resize(img, (80, 80), interpolation=cv2.INTER_AREA)  # ~45 px: found, too small
    assert _code(rec, mid) == FACE_TOO_SMALL
    with get_reconstructor("mesh_fit", max_yaw_deg=5.0) as strict:
        assert _code(strict, read_image(str(shared("portraits", "lp_s9_monalisa.jpg")))) == HEAD_TURNED_TOO_FAR
    # Undecodable bytes never reach the reconstructor: imageio says why.
    for data in (b"", b"not an image at all", cv2.imencode(".jpg", img)[1].tobytes()[:2000]):
        with pytest.raises(ValueError):
            decode_compressed(data, max_pixels=40_000_000)
    ihdr = b"IHDR" + (8000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"  # 8000x8000 RGB, no pixels
    png_header = (b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + ihdr + zlib.crc32(ihdr).to_bytes(4, "big")
                  + (1 << 20).to_bytes(4, "big") + b"IDAT")
    with pytest.raises(ValueError, match="above the limit"):
        decode_compressed(png_header, max_pixels=40_000_000)


def test_other_encodings_are_converted(rec):
    from gaussian_head_ros.core.imageio import decode_raw, read_image

    img = read_image(str(shared("portraits", "obama_official.jpg")))
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    mono = decode_raw(gray.tobytes(), w, h, w, "mono8")
    assert rec.reconstruct(mono).avatar.num_gaussians > 10_000
    rgba16 = (np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], 2).astype(np.uint16) * 257)[..., [2, 1, 0, 3]]
    bgra16 = decode_raw(rgba16.astype("<u2").tobytes(), w, h, w * 8, "bgra16")
    assert np.abs(bgra16.astype(int) - img).max() <= 1
    with pytest.raises(ValueError, match="unsupported image encoding"):
        decode_raw(b"\0" * 16, 2, 2, 8, "32FC1")


def test_a_photo_gives_the_same_avatar_from_any_reconstructor():
    """A mesh_fit reconstruction is a function of the photo and the options: a fresh reconstructor's result for
    business_person (fast preset) is bit-identical, field by field (the avatar's arrays and source camera, the photo,
    mask, expression, warnings and figures; not the timings), to conftest.mesh_fit_result's, made by the session's
    shared reconstructor, in a whole run after other photos. The reconstruction node's avatar cache (reconstructor_key
    and the photo's digest) and the tests' shared results (conftest.mesh_fit_result) rest on it."""
    import dataclasses

    from conftest import mesh_fit_result

    from gaussian_head_ros.core.imageio import read_image

    photo = read_image(str(shared("portraits", "business_person.png")))
    with get_reconstructor("mesh_fit", preset="fast") as fresh:
        a = fresh.reconstruct(photo, operator_id="same")
    b = mesh_fit_result(photo, operator_id="same", preset="fast")

    def differ(x, y, name):
        if dataclasses.is_dataclass(x):
            return [d for f in dataclasses.fields(x) for d in differ(getattr(x, f.name), getattr(y, f.name),
                                                                     f"{name}.{f.name}")]
        if isinstance(x, dict):
            return [name] if x.keys() != y.keys() else [d for k in x for d in differ(x[k], y[k], f"{name}[{k}]")]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return [] if np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype else [name]
        return [] if x == y else [name]

    diffs = differ(a.avatar, b.avatar, "avatar") + [d for n in ("photo", "mask", "expression", "warnings", "info")
                                                     for d in differ(getattr(a, n), getattr(b, n), n)]
    assert not diffs, diffs


def test_options_are_validated():
    with pytest.raises(ValueError, match="unknown reconstruction backend"):
        get_reconstructor("nope")
    with pytest.raises(ValueError, match="unknown mesh_fit options"):
        get_reconstructor("mesh_fit", max_gausians=5)
    with pytest.raises(ValueError, match="preset"):
        get_reconstructor("mesh_fit", preset="huge")
    with pytest.raises(ValueError, match="checkpoint"):
        get_reconstructor("rar")


# ---------------------------------------------------------------------------------------------------
# CLI


def test_cli_reconstruct_with_preview(tmp_path, capsys):
    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.avatar import load_ply

    photo = shared("portraits", "lp_d8_man_glasses.jpg")
    out = tmp_path / "new" / "me.ply"  # a folder that does not exist yet is made
    assert main(["reconstruct", str(photo), "-o", str(out), "--preview", str(tmp_path / "prev")]) == 0
    a = load_ply(out)
    assert a.num_gaussians <= 60_000 and a.operator_id == "lp_d8_man_glasses"
    for f in ("photo.png", "render.png", "mask.png"):
        im = cv2.imread(str(tmp_path / "prev" / f), cv2.IMREAD_UNCHANGED)
        assert im is not None and im.shape[:2] == (512, 512), f
    photo_png = cv2.imread(str(tmp_path / "prev" / "photo.png")).astype(np.float32)
    render_png = cv2.imread(str(tmp_path / "prev" / "render.png")).astype(np.float32)
    mask = cv2.imread(str(tmp_path / "prev" / "mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert np.abs(photo_png[mask] - render_png[mask]).mean() < 8  # the render is the photo, in the head region


def test_the_contact_sheet_s_label_is_legible_on_a_white_backdrop(tmp_path):
    """scripts/contact_sheet.py wrote each row's label (the photo's name, its Gaussian count) in white: on
    business_person's white backdrop 'business_person.png' could not be read (user36, s36: the label's pixels left of
    her hair at luma 254-255). Now outlined in black: the backdrop there has dark pixels (the outline)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("contact_sheet", Path(__file__).parents[1] / "scripts" /
                                                  "contact_sheet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "sheet.png"
    assert mod.main([str(shared("portraits", "business_person.png")), "-o", str(out), "--size", "128",
                     "--yaws", "0"]) == 0
    sheet = cv2.imread(str(out)).astype(np.float32)
    assert sheet.shape == (128, 3 * 128, 3)
    backdrop = sheet[4:20, 4:40].mean(axis=2)  # the label's first letters, over the white wall left of her hair
    assert (backdrop < 128).mean() > 0.1, f"dark share {(backdrop < 128).mean():.3f}, min luma {backdrop.min():.0f}"


@pytest.mark.parametrize("ring_rgb, counted", [((0.61, 0.16, 0.20), True), ((0.62, 0.42, 0.31), False),
                                               ((0.06, 0.03, 0.05), False)])
def test_rim_backdrop_counts_a_backdrop_hued_rim_and_nothing_else(ring_rgb, counted):
    """scripts/rim_backdrop.py's measure on a synthetic render (a skin disc before a red and white striped backdrop,
    drawn on black and on white with a soft 1 px edge): a 3 px ring of the flag's red inside its outline is counted
    at every pixel of it that shows (alpha >= 0.25), a ring of the skin a little darker is not, nor a dark ring
    (no colour to see), and nothing deeper in the disc nor its edge's partial coverage by itself."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("rim_backdrop", Path(__file__).parents[1] / "scripts" /
                                                  "rim_backdrop.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    s = 128
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    r = np.hypot(yy - s / 2, xx - s / 2)
    alpha = np.clip(40.0 - r + 0.5, 0.0, 1.0)  # a disc of radius 40 px, its edge 1 px soft
    skin = np.float32((0.66, 0.41, 0.29))
    colour = np.where(((r > 37) & (r < 40.5))[..., None], np.float32(ring_rgb), skin)
    black = (alpha[..., None] * colour).astype(np.float32)
    white = (black + (1.0 - alpha)[..., None]).astype(np.float32)
    photo = np.where((yy // 8 % 2 == 0)[..., None], np.float32((0.61, 0.16, 0.20)), np.float32((0.9, 0.9, 0.9)))
    photo = np.where((alpha > 0.5)[..., None], skin, photo).astype(np.float32)
    bg_pal, fg_pal = mod.palettes(photo, alpha)
    hued = mod.backdrop_hued(black, white, bg_pal, fg_pal)
    ring = (r > 37) & (r < 40.5) & (alpha >= 0.25)
    assert not (hued & ~ring).any(), f"{int((hued & ~ring).sum())} pixels counted off the ring"
    if counted:
        assert hued[ring].mean() > 0.95, f"{hued[ring].mean():.2f} of the red ring counted"
    else:
        assert not hued.any(), f"{int(hued.sum())} pixels of a {ring_rgb} ring counted"


def test_cli_bad_input_exits_with_one_line(tmp_path, capsys):
    from gaussian_head_ros.cli import main

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 200, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    for path, why in ((blank, "no face"), (corrupt, "decode"), (tmp_path / "missing.jpg", "cannot read")):
        capsys.readouterr()
        assert main(["reconstruct", str(path), "-o", str(tmp_path / "x.ply")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0], err
    assert not (tmp_path / "x.ply").exists()
    capsys.readouterr()  # a missing file elsewhere in the tool: one line too, no traceback
    assert main(["bench", "--avatar", str(tmp_path / "missing.ply")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.ply" in err[0] and "not found" in err[0], err  # (files.check_exists, user48b)


def test_cli_numeric_arguments_out_of_range_are_usage_errors(capsys):
    """`bench --size 0` ended in a ZeroDivisionError traceback, `bench --size -5` / `--gaussians -5` in numpy's
    'negative dimensions are not allowed', `eval --max-frames -3` in an IndexError traceback: each is now
    argparse's usage error naming the option (exit status 2), before any work starts."""
    from gaussian_head_ros.cli import main

    for argv, option in ((["bench", "--size", "0"], "--size"), (["bench", "--size", "-5"], "--size"),
                         (["bench", "--gaussians", "-5"], "--gaussians"), (["render", "a.ply", "-o", "a.mp4",
                                                                             "--size", "0"], "--size"),
                         (["eval", "--video", "clip.mp4", "--max-frames", "-3"], "--max-frames"),
                         (["eval", "--video", "clip.mp4", "--stride", "0"], "--stride"),
                         # render --fps 0 rendered at 30 FPS, --seconds -1 one frame: refused like the others
                         (["render", "a.ply", "-o", "a.mp4", "--fps", "0"], "--fps"),
                         (["render", "a.ply", "-o", "a.mp4", "--fps", "nan"], "--fps"),
                         (["render", "a.ply", "-o", "a.mp4", "--seconds", "-1"], "--seconds"),
                         (["render", "a.ply", "-o", "a.mp4", "--fov", "0"], "--fov"),
                         (["render", "a.ply", "-o", "a.mp4", "--distance", "-1"], "--distance"),
                         (["render", "a.ply", "-o", "a.mp4", "--background", "0", "2", "0"], "--background"),
                         # -o a.txt failed after the whole drive: "cannot write video a.txt (OpenCV has no mp4v encoder?)"
                         (["render", "a.ply", "-o", "a.txt"], "-o/--output"),
                         (["eval", "--video", "clip.mp4", "--output", "side.png"], "--output"),
                         (["demo", "--output", "demo.webm"], "--output"),
                         # reconstruct --max-pixels -5 went on to refuse the photo 'above the limit of -5', demo
                         # --size 0 ran at 512 (the render node's refusal only in its log), --fps 0 / --seconds 0
                         # the same (user26, s26)
                         (["reconstruct", "a.jpg", "-o", "a.ply", "--max-pixels", "-5"], "--max-pixels"),
                         # -o a.txt wrote a PLY named a.txt, and a.txt.driving.npz (user26, s26)
                         (["reconstruct", "a.jpg", "-o", "a.txt"], "-o/--output"),
                         (["demo", "--size", "0"], "--size"), (["demo", "--fps", "0"], "--fps"),
                         (["demo", "--seconds", "0"], "--seconds")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and f"argument {option}: must be" in err[-1], (argv, err)


def test_cli_a_wrong_option_value_or_controls_file_is_one_line(tmp_path, capsys):
    """`reconstruct --option max_gaussians=abc` ended in a TypeError traceback (the range check compared 'abc' with
    numbers); `render --controls clip.mp4` said only "'utf-8' codec can't decode byte 0xae in position 51" (user26,
    s26); `--option eyeball=3` (one of MeshFitConfig's own configs) an AttributeError traceback (session 48). Each is now one line naming what is wrong, exit status 1, before any work."""
    from gaussian_head_ros.cli import main

    photo = str(shared("portraits", "lp_d8_man_glasses.jpg"))
    clip = str(shared("driving", "lp_d0.mp4"))
    ply = tmp_path / "a.ply"
    ply.write_bytes(b"ply\n")  # never read: the controls are read first
    for argv, said in ((["reconstruct", photo, "-o", str(tmp_path / "x.ply"), "--option", "max_gaussians=abc"],
                        "max_gaussians must be an integer, got 'abc'"),
                       (["reconstruct", photo, "-o", str(tmp_path / "x.ply"), "--option", "eyeball=3"],
                        "unknown mesh_fit options: 'eyeball'"),  # a config of its own: an AttributeError traceback
                       (["render", str(ply), "-o", str(tmp_path / "a.mp4"), "--controls", clip],
                        f"{clip} is not a text file of FaceControl JSON lines (a video? `gaussian-head track {clip}")):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (argv, err)


def test_normals_from_points_are_numpys_central_difference_normals_to_the_bit():
    """surfaces.normals_from_points is one numba pass (rec59: ~8x faster on a 512 px map) in numpy's float32
    arithmetic: byte for byte the numpy expressions it replaced (np.roll's wrap-round neighbours, one-sided
    differences at the edge of `valid`, np.cross, np.linalg.norm, (0, 0, -1) where the normal is ~0, flipped to face
    the camera), on random maps with NaN points, flat (0) patches, float64 input and sparse masks; a plane facing the
    camera gets (0, 0, -1)."""
    from gaussian_head_ros.core.reconstruct.surfaces import normals_from_points

    def reference(points, valid):
        p = points.astype(np.float32)
        right, left = np.roll(p, -1, 1), np.roll(p, 1, 1)
        down, up = np.roll(p, -1, 0), np.roll(p, 1, 0)
        vr, vl, vd, vu = np.roll(valid, -1, 1), np.roll(valid, 1, 1), np.roll(valid, -1, 0), np.roll(valid, 1, 0)
        dx = np.where((vr & vl)[..., None], right - left,
                      np.where(vr[..., None], right - p, np.where(vl[..., None], p - left, 0)))
        dy = np.where((vd & vu)[..., None], down - up,
                      np.where(vd[..., None], down - p, np.where(vu[..., None], p - up, 0)))
        n = np.cross(dy, dx)
        norm = np.linalg.norm(n, axis=-1, keepdims=True)
        n = np.where(norm > 1e-12, n / np.maximum(norm, 1e-12), np.array([0, 0, -1.0], np.float32))
        return np.where(np.sum(n * p, -1, keepdims=True) > 0, -n, n).astype(np.float32)

    rng = np.random.default_rng(3)
    for t in range(40):
        h, w = rng.integers(2, 60, 2)
        p = rng.normal(size=(h, w, 3)) * rng.choice([1e-7, 1e-3, 1.0])
        p[..., 2] += rng.choice([-1.0, 0.0, 2.0])
        if t % 3 == 0:
            p[rng.random((h, w)) < 0.05] = np.nan
        if t % 4 == 0:
            p[rng.random((h, w)) < 0.1] = 0.0
        valid = rng.random((h, w)) < rng.uniform(0.2, 1.0)
        points = p.astype(rng.choice([np.float32, np.float64]))
        out = normals_from_points(points, valid)
        assert out.dtype == np.float32 and out.tobytes() == reference(points, valid).tobytes(), t
    yy, xx = np.mgrid[0:8, 0:8].astype(np.float32)
    plane = np.stack([xx * 0.01, yy * 0.01, np.full_like(xx, 1.0)], -1)
    np.testing.assert_array_equal(normals_from_points(plane, np.ones((8, 8), bool))[3, 3], [0, 0, -1])


def test_nearest_distance_is_numpys_to_the_bit():
    """surfaces.nearest_distance is one numba pass (rec59: ~80x faster for 50k colours and 8 palette colours): byte
    for byte np.min(np.linalg.norm(colours[:, None] - palette[None], axis=-1), axis=1), its dtype too, for float32
    and float64 colours and palettes, NaN colours or palette colours, colours on the palette, 1-4 channels, no
    colours; an empty palette or 8 channels raise ValueError."""
    from gaussian_head_ros.core.reconstruct.surfaces import nearest_distance

    rng = np.random.default_rng(4)
    for t in range(60):
        n, k, c = int(rng.integers(0, 300)), int(rng.integers(1, 10)), int(rng.integers(1, 5))
        colours = rng.random((n, c)).astype(rng.choice([np.float32, np.float64]))
        palette = rng.random((k, c)).astype(rng.choice([np.float32, np.float64]))
        if t % 5 == 0 and n:
            colours[rng.random(n) < 0.1] = np.nan
        if t % 7 == 0:
            palette[0] = np.nan
        if t % 3 == 0 and n:
            colours[: n // 2] = palette[rng.integers(0, k, n // 2)]
        ref = np.min(np.linalg.norm(colours[:, None, :] - palette[None], axis=-1), axis=1)
        out = nearest_distance(colours, palette)
        assert out.dtype == ref.dtype and out.tobytes() == ref.tobytes(), t
    for colours, palette in ((np.zeros((3, 3)), np.zeros((0, 3))), (np.zeros((3, 8)), np.zeros((2, 8)))):
        with pytest.raises(ValueError):
            nearest_distance(colours, palette)


def test_refine_silhouette_keeps_textured_hair_of_the_backdrops_colour():
    """Grey hair against a light, defocused backdrop has the backdrop's colours but not its smoothness: the
    peel keeps it, and still peels a smooth strip of backdrop the segmentation took in (obama_official's crown
    was peeled to a tuft before)."""
    from gaussian_head_ros.core.reconstruct.surfaces import refine_silhouette

    s = 240
    yy, xx = np.mgrid[:s, :s]
    rng = np.random.default_rng(3)
    photo = np.full((s, s, 3), 0.78, np.float32) + (yy / s * 0.04)[..., None].astype(np.float32)  # smooth backdrop
    mask = (yy - 120) ** 2 + (xx - 120) ** 2 < 90 ** 2  # the segmentation's head
    d = np.sqrt((yy - 120) ** 2 + (xx - 120) ** 2)
    photo[d < 68] = (0.25, 0.18, 0.15)  # the face/hair deep inside
    hair = mask & (d >= 68) & (yy < 90)  # a band of strands: backdrop-grey on average, strongly textured
    photo[hair] = 0.78 + rng.normal(0, 0.12, (hair.sum(), 1)).astype(np.float32)
    strip = mask & (d >= 68) & (yy >= 150)  # a smooth strip of the backdrop taken in
    keep = np.zeros_like(mask)
    out = refine_silhouette(np.clip(photo, 0, 1), mask, keep)
    assert out[hair].mean() > 0.9, f"textured hair peeled: {out[hair].mean():.2f} kept"
    away = strip & (d >= 78)  # beyond the detail window of the dark interior's edge
    assert out[away].mean() < 0.2, f"smooth backdrop strip kept: {out[away].mean():.2f}"


def test_refine_silhouette_peels_a_smooth_backdrop_bump_the_person_also_wears():
    """A smooth cream bump of backdrop taken in above dark hair, while the person's own colours deep inside
    include a cream shirt: against the whole person's palette the bump looked like the shirt and stayed
    (obama_official's window above his crown, his white shirt: a pale patch on his head from every side). Against
    the colours on either side of the edge at that place it is backdrop, and the dark hair beside it stays."""
    from gaussian_head_ros.core.reconstruct.surfaces import refine_silhouette

    s = 240
    yy, xx = np.mgrid[:s, :s]
    rng = np.random.default_rng(7)
    cream = np.array([0.85, 0.82, 0.72], np.float32)
    photo = np.tile(cream, (s, s, 1)) + (xx / s * 0.03)[..., None].astype(np.float32)  # smooth cream backdrop
    d = np.sqrt((yy - 130) ** 2 + (xx - 120) ** 2)
    head = d < 80
    photo[head] = 0.2 + rng.normal(0, 0.1, (head.sum(), 1)).astype(np.float32)  # dark, textured hair
    shirt = head & (yy > 160)  # a cream shirt deep inside: the person's palette has the backdrop's colours
    photo[shirt] = cream + (xx[shirt] / s * 0.03)[:, None]
    bump = ~head & ((yy - 50) ** 2 + (xx - 120) ** 2 < 14 ** 2) & (yy < 52)  # backdrop the segmentation took in
    mask = head | bump
    out = refine_silhouette(np.clip(photo, 0, 1), mask, np.zeros_like(mask))
    away = bump & (d >= 87)  # beyond the detail window of the hair's edge (the smoothness test's blur)
    assert out[away].mean() < 0.2, f"backdrop bump kept: {out[away].mean():.2f}"
    hair_edge = head & (d > 70) & (yy < 130)
    assert out[hair_edge].mean() > 0.95, f"hair edge peeled: {out[hair_edge].mean():.2f} kept"


def test_refine_silhouette_peels_a_grainy_backdrop_strip():
    """The smoothness test has a floor: a strip of backdrop the segmentation took in, grainier than the very
    smooth backdrop around it (JPEG blocks, sensor noise in a shadow), is still peeled. Without the floor the
    bar sat at 2 x the backdrop's own faint noise, and pixel rounding of lp_d8's JPEG flipped whole strips of
    hair in or out of the mask (test_field_inputs' EXIF orientations 1.1 dB apart)."""
    from gaussian_head_ros.core.reconstruct.surfaces import refine_silhouette

    s = 240
    yy, xx = np.mgrid[:s, :s]
    rng = np.random.default_rng(5)
    photo = np.full((s, s, 3), 0.78, np.float32) + rng.normal(0, 0.001, (s, s, 1)).astype(np.float32)
    mask = (yy - 120) ** 2 + (xx - 120) ** 2 < 90 ** 2
    d = np.sqrt((yy - 120) ** 2 + (xx - 120) ** 2)
    photo[d < 68] = (0.25, 0.18, 0.15)
    strip = mask & (d >= 68) & (yy >= 150)  # backdrop colour, grain of a few grey levels
    photo[strip] += rng.normal(0, 0.012, (strip.sum(), 1)).astype(np.float32)
    out = refine_silhouette(np.clip(photo, 0, 1), mask, np.zeros_like(mask))
    away = strip & (d >= 78)
    assert out[away].mean() < 0.2, f"grainy backdrop strip kept: {out[away].mean():.2f}"
    assert refine_silhouette(np.clip(photo, 0, 1), mask, np.zeros_like(mask), texture_floor=0.0)[away].mean() > 0.5


def _hair_over_wall(wall, hair, seed=5):
    """A 200 px portrait: a face disc (r 50) with a hair band to r 85 whose left half is strands (1 px of hair in
    every 4 columns) over the wall, and the wall around; the mask the segmentation gives: the r 85 disc."""
    s = 200
    yy, xx = np.mgrid[:s, :s]
    d = np.sqrt((yy - 100) ** 2 + (xx - 100) ** 2)
    rng = np.random.default_rng(seed)
    photo = np.empty((s, s, 3), np.float32)
    photo[:] = wall
    photo += rng.normal(0, 0.01, photo.shape).astype(np.float32)
    photo[d < 85] = hair
    strands = (d >= 55) & (d < 85) & (xx < 70)
    photo[strands & (xx % 4 != 0)] = wall  # the wall between the strands
    photo[d < 50] = (0.85, 0.65, 0.55)  # skin
    return np.clip(photo, 0, 1), d < 85, d < 50, strands


def test_matte_hair_takes_the_wall_between_strands_out_and_its_colour_off_the_band():
    """lp_d9_woman_turned's wispy blonde hair over a yellow wall: the segmentation keeps the wall between the
    strands, a yellow wedge beside her face from every side. surfaces.matte_hair's closed-form matte takes it
    out of the mask and gives the band the hair's colour; the solid hair stays whole."""
    from gaussian_head_ros.core.reconstruct.surfaces import matte_hair

    wall, hair = np.array((0.80, 0.70, 0.10), np.float32), np.array((0.45, 0.30, 0.20), np.float32)
    photo, mask, keep, strands = _hair_over_wall(wall, hair)
    out, colours, _ = matte_hair(photo, mask, keep)
    gaps = strands & (np.indices(mask.shape)[1] % 4 != 0)
    assert out[gaps].mean() < 0.5, f"{out[gaps].mean():.2f} of the wall between strands kept"
    solid = mask & ~strands & ~keep & (np.indices(mask.shape)[1] > 130)
    assert out[solid].mean() > 0.99 and out[keep].all()
    kept = out & strands
    yellow = np.linalg.norm(colours[kept] - wall, axis=-1) < np.linalg.norm(colours[kept] - hair, axis=-1)
    # without the matte 0.75 (3 columns in 4 are the wall); 0.22 with it (the wall's pixels a strand does not
    # touch, alpha 0, keep their colour: F there is only extrapolated)
    assert yellow.mean() < 0.3, f"{yellow.mean():.2f} of the kept strands' colours nearer the wall's"


def test_matte_hair_keeps_dark_hair_on_a_dark_wall():
    """Alpha alone is wrong where hair and backdrop share a colour (two_children's and obama_speech's dark hair on
    dark walls read ~0.6): matte_hair removes only what is clearly nearer the backdrop's colours."""
    from gaussian_head_ros.core.reconstruct.surfaces import matte_hair

    photo, mask, keep, strands = _hair_over_wall(np.float32((0.16, 0.16, 0.17)), np.float32((0.12, 0.10, 0.09)))
    photo[strands] = (0.12, 0.10, 0.09)  # solid dark hair: no wall between
    out, _, _ = matte_hair(photo, mask, keep)
    assert out[mask].mean() > 0.99, f"{1 - out[mask].mean():.3f} of the dark hair removed"


def test_matte_hair_computes_no_matte_when_no_backdrop_colour_is_in_the_band(monkeypatch):
    """The matte costs 1-4 s per photo: where no pixel of the mask's edge band is clearly of the backdrop's colours
    (no blob of them could leave), matte_hair does not compute it and returns the mask and the photo as they are
    (five of the nine ../shared portraits)."""
    import pymatting

    from gaussian_head_ros.core.reconstruct.surfaces import matte_hair

    def no_matte(*args, **kwargs):
        raise AssertionError("the matte was computed")

    photo, mask, keep, strands = _hair_over_wall(np.float32((0.20, 0.40, 0.90)), np.float32((0.45, 0.30, 0.20)))
    solid = photo.copy()
    solid[strands] = (0.45, 0.30, 0.20)  # solid hair: no blue wall between strands
    monkeypatch.setattr(pymatting, "estimate_alpha_cf", no_matte)
    out, colours, own = matte_hair(solid, mask, keep)
    assert np.array_equal(out, mask) and np.array_equal(colours, solid) and np.array_equal(own, solid)
    with pytest.raises(AssertionError, match="the matte was computed"):  # the strands over the wall need it
        matte_hair(photo, mask, keep)


def test_the_hair_matte_keeps_pymattings_prints_off_the_console(capsys, caplog):
    """A portrait whose face is ~75 px wide on a grey-blue wall (obama_official at 0.27 in a 900x700 JPEG): pymatting's
    incomplete Cholesky preconditioner fails on its matte and retries with a diagonal shift, printing six lines to
    stdout ('PERFORMANCE WARNING: / Thresholded incomplete Cholesky decomposition failed ... Try decreasing
    discard_threshold or start with a larger shift'). In robot.launch.py photo:=... they stood in the reconstruction
    node's console between its log lines, in no log file, naming parameters nobody here sets (user54). Now they are one
    debug line of surfaces' logger; the avatar is the same."""
    import logging

    from PIL import Image

    from gaussian_head_ros.core.imageio import decode_compressed

    ob = Image.open(shared("portraits", "obama_official.jpg")).convert("RGB")
    wall = Image.new("RGB", (900, 700), (120, 130, 140))
    wall.paste(ob.resize((int(910 * 0.27), int(1137 * 0.27)), Image.LANCZOS), (330, 200))
    jpeg = io.BytesIO()
    wall.save(jpeg, "JPEG", quality=92)
    with caplog.at_level(logging.DEBUG, logger="gaussian_head_ros.core.reconstruct.surfaces"):
        mesh_fit_result(decode_compressed(jpeg.getvalue()))
    out = capsys.readouterr().out
    assert "PERFORMANCE WARNING" not in out and "Cholesky" not in out, out
    said = [r.getMessage() for r in caplog.records if "Cholesky" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("pymatting: PERFORMANCE WARNING: Thresholded incomplete Cholesky"), said


def test_matte_hair_takes_a_mask_that_fills_the_crop():
    """A person mask with (nearly) no outside (a face filling the crop: fewer than 50 pixels of backdrop round it)
    leaves as it came, with or without hair_skin. matte25's first matte_hair returned there a backdrop palette it
    had not made yet (UnboundLocalError: a photo that fills the crop could not be reconstructed; review25)."""
    from gaussian_head_ros.core.reconstruct.surfaces import matte_hair

    photo = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    mask, keep = np.ones((64, 64), bool), np.zeros((64, 64), bool)
    for hair_skin in (None, (np.float32((0.3, 0.2, 0.1)), np.float32((0.8, 0.6, 0.5)))):
        out, colours, own = matte_hair(photo, mask, keep, hair_skin=hair_skin)
        assert np.array_equal(out, mask) and np.array_equal(colours, photo) and np.array_equal(own, photo)


def _blond_over_red(s: int = 160):
    """A blond head (disc of radius 60 px) over a red backdrop with a white stripe through it, its outer 4 px mixed
    with the backdrop behind (a = 0.2 .. 0.8 going in), a skin face inside (radius 30), and a dark strand (off the
    blond-red line) crossing the rim at the top. -> photo, mask, keep, rim (the mixed pixels), strand."""
    yy, xx = np.mgrid[:s, :s]
    d = np.sqrt((yy - 80) ** 2 + (xx - 80) ** 2)
    red, white = np.float32((0.75, 0.05, 0.05)), np.float32((0.85, 0.85, 0.88))
    back = np.where(((xx - yy) % 60 < 20)[..., None], white, red)
    blond = np.float32((0.80, 0.70, 0.45))
    a = np.clip((60 - d) / 5, 0, 1)[..., None]
    photo = (a * blond + (1 - a) * back).astype(np.float32)
    photo[d < 30] = (0.85, 0.60, 0.50)
    strand = (np.abs(xx - 80) <= 1) & (yy < 30) & (d < 60)
    photo[strand] = (0.10, 0.08, 0.06)
    mask = d < 60
    rim = mask & (d > 55) & (a[..., 0] < 0.85) & ~strand
    return photo, mask, d < 30, rim, strand


def test_matte_hair_gives_the_rim_without_the_backdrop_seen_through_it():
    """The hair's outermost pixels mix in the backdrop (trump_official's red flag): the hidden side takes its colours
    from that rim, and turned 20-35 deg carried the flag as red specks behind his ear. matte_hair's third output is
    the rim without it (I = a F + (1 - a) B; B the backdrop there or one of its palette's colours: the flag's red
    and white stripes blur together beside the head); its colours (the photo layer's: what the photo's camera sees)
    keep the mix. A dark strand off the blond-backdrop line stays as it is, and without hair_skin nothing changes."""
    from gaussian_head_ros.core.reconstruct.surfaces import matte_hair

    photo, mask, keep, rim, strand = _blond_over_red()
    blond = np.float32((0.80, 0.70, 0.45))
    hair_skin = (blond, np.float32((0.85, 0.60, 0.50)))
    out, colours, own = matte_hair(photo, mask, keep, hair_skin=hair_skin)
    assert np.array_equal(out, mask) and np.array_equal(colours, photo)
    before = np.linalg.norm(photo[rim] - blond, axis=-1)
    after = np.linalg.norm(own[rim] - blond, axis=-1)
    assert np.median(before) > 0.2, "the rim is not mixed"
    assert np.percentile(after, 90) < 0.05, f"the rim's 90th percentile {np.percentile(after, 90):.3f} off the hair's"
    assert np.abs(own[strand] - photo[strand]).max() < 0.02, "the dark strand was changed"
    inner = mask & ~cv2.dilate((~mask).astype(np.uint8), np.ones((19, 19), np.uint8)).astype(bool)
    assert np.array_equal(own[inner], photo[inner]), "pixels 9 px and more inside changed"
    assert np.array_equal(matte_hair(photo, mask, keep)[2], photo), "without hair_skin the rim changed"


def test_a_turned_heads_hair_outline_has_no_backdrop_in_it(results):
    """The hidden side behind the hair takes the rim's colours, and the rim's outermost pixels mix in the photo's
    backdrop: turned 35 deg (the 512 px source view) trump_official's red flag showed as red specks in his hair above
    the ear (67 red pixels there). The hidden side's colours come from the rim without the backdrop (matte_hair's
    third output), which is also what the edge-on photo discs show when turned (back23, session 23; matte25)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    img = source_view(results["trump_official.png"].avatar, -35, 0, background=(0.0, 0.0, 0.0), backend="cpu")
    box = img[60:165, 110:200].astype(np.float32)  # the hair above and behind his right ear
    assert (box.max(-1) > 0.02).mean() > 0.6, "the box is not on the hair"
    r, g, b = box[..., 0], box[..., 1], box[..., 2]
    red = int(((r > 0.3) & (r > 1.6 * g) & (r > 1.6 * b)).sum())
    assert red < 25, f"{red} flag-red pixels in the turned hair above the ear"


def test_a_turned_ear_has_no_backdrop_strip_behind_it(results):
    """The segmentation keeps a 3-6 px strip of the flag's red stripe along trump_official's ear (the ear's contrast
    against it passes refine_silhouette's texture rule, the hair matte reads it as foreground). Turned 20-35 deg (the
    512 px source view) the ear showed a red back: 385 / 341 deep-red pixels over the ear at yaw -35 / -20
    (main 9c6353e; 43 / 36 with surfaces.peel_unlike_rim, session 27)."""
    from gaussian_head_ros.core.reconstruct.preview import source_view

    for yaw in (-35, -20):
        img = source_view(results["trump_official.png"].avatar, yaw, 0, background=(0.0, 0.0, 0.0), backend="cpu")
        box = img[150:320, 100:230].astype(np.float32)  # his right ear and the jaw below it
        assert (box.max(-1) > 0.02).mean() > 0.6, "the box is not on the head"
        r, g, b = box[..., 0], box[..., 1], box[..., 2]
        red = int(((r > 0.3) & (r > 2.5 * g) & (r > 2.5 * b)).sum())
        assert red < 120, f"{red} flag-red pixels over the ear turned {yaw} deg"


@pytest.mark.parametrize("yaw, before", [(-20, 17), (-15, 23), (-10, 34)])
def test_a_turned_ears_rim_can_show_no_flag_red_mixed_into_it(yaw, before):
    """trump_official's ear stands against the flag's red stripe and the pixels along its outline mix it in (no strip
    of the backdrop itself: backdrop_kept tells none there). The photo layer's edge-on discs along that outline keep
    the mix for the photo's camera as their band-1 colour (builder.edge_on_sh), which fades only linearly as the disc
    turns: turned 10-30 deg a dotted red line runs down his ear's rim (ear61). MeshFitConfig.own_ear_rim (off by
    default: it costs the self clips' frame 0) moves the ears' outline to the person's own colour in every view.
    Pixels whose chromaticity (rgb / max(r + g + b, 0.3)) lies 0.3 or more of the way from his skin's (0.46 0.31
    0.23, beside the ear) to the flag's red (0.85 0.08 0.07), within 0.05 of that line, r + g + b over 0.6 (the red
    specks, rgb ~0.63 0.22 0.18, lie 0.39 of the way; his ear's own pink 0.05), in rows 100-330, columns 60-260 of
    the 512 px view (his right ear, the hair above it and the jaw below): `before` with it off (as main 84bca35);
    3 / 1 / 1 with it on (yaw -30 / -25: 6 / 10 -> 2 / 3)."""
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.preview import source_view

    res = mesh_fit_result(read_image(str(shared("portraits", "trump_official.png"))), own_ear_rim=True)
    img = source_view(res.avatar, yaw, 0, size=512, background=(0.0, 0.0, 0.0),
                      backend="cpu").astype(np.float64)[100:330, 60:260]
    assert (img.max(-1) > 0.02).mean() > 0.5, "the box is not on his turned head"
    skin, flag = np.array([0.46, 0.31, 0.23]), np.array([0.85, 0.08, 0.07])
    c = img / np.maximum(img.sum(-1, keepdims=True), 0.3)
    share = ((c - skin) @ (flag - skin)) / np.sum((flag - skin) ** 2)
    off = np.linalg.norm(c - skin - share[..., None] * (flag - skin), axis=-1)
    red = int(((share >= 0.3) & (off < 0.05) & (img.sum(-1) > 0.6)).sum())
    assert red < 0.4 * before, f"{red} flag-red mixed pixels by the ear turned {yaw} deg ({before} before)"


def test_peel_unlike_rim_takes_a_strip_of_an_alien_backdrop_colour_and_keeps_the_rest():
    """A strip of a saturated backdrop colour the person has nowhere, 4 px wide inside the mask along part of its
    outline (trump_official's flag beside his ear), leaves with the mixed pixels outside it; the outline where the
    mask's rim has the person's own colours, a pale backdrop halo that is not unlike them, and `keep` stay."""
    from gaussian_head_ros.core.reconstruct.surfaces import peel_unlike_rim

    s = 200
    yy, xx = np.mgrid[:s, :s]
    rng = np.random.default_rng(3)
    photo = np.tile(np.array([0.85, 0.86, 0.88], np.float32), (s, s, 1))  # white-grey backdrop
    red = np.array([0.6, 0.03, 0.03], np.float32)
    photo[(xx > 20) & (xx < 40)] = red  # a red stripe in the backdrop, left of the head
    d = np.sqrt((yy - 100) ** 2 + (xx - 110) ** 2)
    head = d < 70
    skin = np.array([0.72, 0.5, 0.4], np.float32)
    photo[head] = skin + rng.normal(0, 0.03, (head.sum(), 3)).astype(np.float32)
    strip = head & (d >= 66) & (xx < 70) & (np.abs(yy - 100) < 30)  # the red kept inside the outline, on the left
    photo[strip] = red
    halo = head & (d >= 67) & (xx > 150) & (np.abs(yy - 100) < 20)  # a pale halo on the right: backdrop-like, not alien
    photo[halo] = 0.5 * (skin + np.array([0.85, 0.86, 0.88], np.float32))
    photo = np.clip(photo, 0, 1)
    keep = np.zeros_like(head)
    keep[:80] = True  # kept rows across the strip's upper end: they stay
    out = peel_unlike_rim(photo, head, keep)
    assert out[strip & ~keep].mean() < 0.1, f"{out[strip & ~keep].mean():.2f} of the red strip kept"
    assert out[strip & keep].all(), "kept pixels peeled"
    assert out[halo].all(), "the pale halo peeled"
    assert out[head & ~strip & ~(d >= 62)].all(), "the head's inside peeled"
    assert not (out & ~head).any()


def test_the_reconstructors_warm_up_loads_the_hair_matte_s_kernels():
    """surfaces.matte_hair imports pymatting only when a photo needs the matte (four of the nine ../shared
    portraits): its numba kernels load on import (2.3-2.6 s here, cached; ~40 s the first time after an install),
    and the reconstruction node's first such photo paid it on top of its reconstruction. warm_up (the node's, at
    start) loads them now, where the matte is on (in a fresh interpreter: this process has imported it already)."""
    import subprocess
    import sys

    code = ("import sys; from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitReconstructor; "
            "MeshFitReconstructor(hair_matte=False).warm_up(); off = 'pymatting' in sys.modules; "
            "MeshFitReconstructor().warm_up(); print(off, 'pymatting' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.split()[-2:] == ["False", "True"], out.stdout + out.stderr[-2000:]


def _lp_d9_at_rest(results):
    """lp_d9_woman_turned's avatar at rest in its photo's camera: (image (h, w, 3), shown (h, w) uint8 alpha >
    0.5, photo (h, w, 3) float [0, 1])."""
    from gaussian_head_ros.core.control import FaceControl, matrix_to_quat
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import photo_pose, source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    res = results["lp_d9_woman_turned.jpg"]
    a = res.avatar
    rot, view = photo_pose(a)
    p = Driver(a).drive(FaceControl(rotation=matrix_to_quat(rot).astype(np.float32)))
    K, w, h = source_intrinsics(a)
    r = rasterize(p.means, p.quats, p.scales, p.opacities, p.colors, view.astype(np.float32), K, w, h, backend="cpu")
    return r.image, (r.alpha > 0.5).astype(np.uint8), res.photo.astype(np.float32) / 255


def test_lp_d9s_hair_shows_no_yellow_wall_at_rest(results):
    """lp_d9_woman_turned's wispy blonde hair over a yellow wall: the segmentation keeps the wall seen between
    the strands, a bright yellow wedge beside her face in every view (issue 11). surfaces.matte_hair takes it out
    and gives the strands their own colour: of the avatar's rendered pixels within 30 px of its outline in the top
    60 % of the photo (the hair beside the face), those within 0.15 (RGB) of the wall's colour: 14.9 % before,
    0.7 % with it."""
    image, shown, photo = _lp_d9_at_rest(results)
    h = shown.shape[0]
    wall = np.median(photo[~cv2.dilate(shown, np.ones((15, 15), np.uint8)).astype(bool)], axis=0)
    band = shown.astype(bool) & ~cv2.erode(shown, np.ones((61, 61), np.uint8)).astype(bool)
    band[int(0.6 * h):] = False
    yellow = (np.linalg.norm(image - wall, axis=-1) < 0.15)[band].mean()
    assert yellow < 0.05, f"{yellow:.3f} of the hair band shows the wall's colour {wall.round(2)}"


def test_lp_d9s_outline_stays_smooth_where_the_wall_left(results):
    """Where matte_hair takes the wall out of lp_d9_woman_turned's hair, the outline it leaves is smooth: no strand
    hooks, tufts or beak standing out of it: of the upper left quarter of the avatar at rest, 34 px stand out of its
    opening by a 15 px disc (the photo's mask with the wedge 36; matte23's first cut, which left a jagged outline
    with a beak at mid height, 175)."""
    _, shown, _ = _lp_d9_at_rest(results)
    h, w = shown.shape
    opened = cv2.morphologyEx(shown, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    spurs = (shown > opened)[: int(0.6 * h), : w // 2].sum()
    assert spurs < 80, f"{spurs} px of the outline beside her face stand out of its 15 px opening"


def _jaw_dropped_photo(thickness: float = 1e-3):
    """The canonical face (head frame, metres) with a photo taken with its jaw dropped: below the nose base 1.5x
    taller, same width and depth -> (v [V, 3] rest, faces [F, 3], stretch [V, 3] the photo's expression, flat [F]
    bool: stretch-grown skin facing the camera below the nose base, built: one flat round 1 mm Gaussian per triangle
    at its photo place, `thickness` its third std-dev)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.deform import stretch_grown_triangles
    from gaussian_head_ros.core.reconstruct.builder import GaussianBatch
    from gaussian_head_ros.core.reconstruct.template import template_faces

    v = _obj_vertices(shared("canonical_face", "face_model_with_iris.obj")) * 0.01 * np.array([1.0, -1.0, -1.0])
    faces = np.asarray(template_faces(), np.int64)
    below = v[:, 1] - v[lmk.NOSE_BASE, 1]
    stretch = np.zeros_like(v)
    stretch[:, 1] = 0.5 * np.maximum(below, 0.0)  # below the nose base: 1.5x taller, same width and depth
    tri = v[faces]
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flat = (np.abs(nrm[:, 2]) > 0.97 * np.linalg.norm(nrm, axis=1)) & (below[faces] > 0.002).all(1)
    lips = ~stretch_grown_triangles(v, faces)  # the lips keep the area rule (their inner triangles unroll)
    assert 50 < lips.sum() < 200 and np.all(v[faces[lips]][..., 1] > v[lmk.NOSE_BASE, 1])
    flat &= ~lips
    assert flat.sum() >= 10  # skin facing the camera below the nose base: stretched ~1.5x one way
    n = len(faces)
    built = GaussianBatch(means=tri.mean(1) + stretch[faces].mean(1), normals=np.tile([0, 0, -1.0], (n, 1)),
                          colors=np.full((n, 3), 0.5), scales=np.tile([1e-3, 1e-3, thickness], (n, 1)),
                          quats=np.tile([1.0, 0, 0, 0], (n, 1)), opacities=np.full(n, 0.9),
                          part=np.full(n, PART_FACE, np.uint8), face_id=np.arange(n, dtype=np.int32),
                          bary=np.full((n, 3), 1 / 3))
    return v, faces, stretch, flat, built


def test_a_lower_face_stretched_one_way_grows_its_gaussians_and_frame_0_gives_them_back():
    """A jaw drop stretches the upper lip and the chin ~1.5x vertically and not across. Bound Gaussians there
    grow by the stretch (core.deform.triangle_growth; by the area's square root, 1.22, their rows parted into
    horizontal stripes over the upper lip; the lips keep that rule), and the rest pose divides by the same
    growth, so a photo taken with that expression comes back at the size it was built (frame 0)."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.deform import DriveConfig
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.builder import to_avatar
    from gaussian_head_ros.core.reconstruct.rest_pose import photo_growth, to_rest_pose

    v, faces, stretch, flat, built = _jaw_dropped_photo()
    g = photo_growth(v + stretch, v, faces)
    np.testing.assert_allclose(g[flat], 1.5, rtol=0.02)
    rest = to_rest_pose(built, v + stretch, v, faces, 0.0, DriveConfig())  # the photo's expression taken out
    np.testing.assert_allclose(rest.scales[flat] * g[flat, None], 1e-3, rtol=1e-5)
    driver = Driver(to_avatar(rest, v, faces))
    frame0 = driver.drive(FaceControl(expression=stretch.astype(np.float32)))
    np.testing.assert_allclose(frame0.scales, built.scales, rtol=1e-4)  # every triangle, stretched or not
    np.testing.assert_allclose(frame0.means, built.means, atol=1e-6)
    np.testing.assert_array_equal(driver.drive(FaceControl.rest()).scales, driver.scales)  # rest: untouched
    # Driven from rest with the stretch (the avatar's own rest is the photo's shape): grown by the stretch.
    own = Driver(to_avatar(built, v, faces)).drive(FaceControl(expression=stretch.astype(np.float32)))
    np.testing.assert_allclose(own.scales[flat] / g[flat, None], 1e-3, rtol=1e-4)
    assert np.all(own.scales[flat] > 1.2e-3 * 1.2)  # not the area's square root (1.22)


def test_the_rest_pose_widens_skin_discs_the_photo_expression_spread_apart():
    """A photo taken with the jaw dropped has its chin and upper lip stretched 1.5x vertically and not across: the rest
    pose shrinks their discs by the growth drive() gives back (1.5), so at rest, where their centres sit as far apart
    across as in the photo, they covered 1 / 1.5 of their photo width: gaps (astronaut_eileen_collins' smile, a fan
    round the mouth corners). rest_pose.cover_rest widens them to at least `share` of the photo disc carried by the
    triangle's map, only across (vertically the shrink is the map's own); triangles the photo barely distorts are left
    exactly as they were, so frame 0 gives them back as built."""
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.deform import DriveConfig
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.builder import to_avatar
    from gaussian_head_ros.core.reconstruct.rest_pose import cover_rest, photo_growth, to_rest_pose

    v, faces, stretch, flat, built = _jaw_dropped_photo(1.5e-4)
    n = len(faces)
    g = photo_growth(v + stretch, v, faces)
    rest = to_rest_pose(built, v + stretch, v, faces, 0.0, DriveConfig())
    before = rest.take(np.arange(n))
    assert np.all(before.scales[flat, :2] < 0.7e-3)  # 1 / 1.5 of the photo's discs, across too
    widened = cover_rest(rest, built, v + stretch, v, faces, 0.8)
    assert widened >= flat.sum()

    def extent(b, rows, axis):  # std-dev along a head-frame axis
        from gaussian_head_ros.core.control import quat_to_matrix
        return np.array([np.sqrt((quat_to_matrix(b.quats[i]) ** 2 @ b.scales[i] ** 2)[axis]) for i in rows])

    rows = np.flatnonzero(flat)
    np.testing.assert_allclose(extent(rest, rows, 0), 0.8e-3, rtol=0.02)  # across: 0.8 of the photo's 1 mm
    np.testing.assert_allclose(extent(rest, rows, 1), extent(before, rows, 1), rtol=0.02)  # along: as before
    still = np.abs(g - 1.0) < 1e-9  # above the nose base: the photo's shape is the rest's
    assert still.sum() > 100
    np.testing.assert_array_equal(rest.scales[still], before.scales[still])
    np.testing.assert_array_equal(rest.quats[still], before.quats[still])
    frame0 = Driver(to_avatar(rest, v, faces)).drive(FaceControl(expression=stretch.astype(np.float32)))
    np.testing.assert_allclose(frame0.scales[still], built.scales[still], rtol=1e-4)  # as built where not widened
    # a share of 0 changes nothing
    again = to_rest_pose(built, v + stretch, v, faces, 0.0, DriveConfig())
    assert cover_rest(again, built, v + stretch, v, faces, 0.0) == 0


def test_a_smiling_photo_rest_skin_has_no_gaps_round_the_mouth(results):
    """astronaut_eileen_collins smiles in her photo; the rest pose takes the smile out, and her skin discs round the
    mouth, shrunk by the rest pose's one isotropic factor while their centres spread apart along the direction the
    smile had squeezed, left a fan of radial gaps round the mouth (the mouth's back wall and cavity seen through them
    as dark specks at one corner on every tpsmm frame; teeth23, session 23). The face layer alone, drawn black on
    white at rest from the photo's camera at 2x: pixels it covers by less than 0.9 in the skin ring round the lips
    (out to 1.8x the outer lip contour's size about its centre): 0.124 of the ring on main, 0.029 with
    rest_pose.cover_rest (share 0.7; 0.012 at 0.8); trump_official's grin 0.106 and 0.025 (0.015); business_person
    (a closed smile) 0.004 and 0.0."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_FACE
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.preview import source_intrinsics
    from gaussian_head_ros.core.render import rasterize

    for name in ("astronaut_eileen_collins.png", "trump_official.png", "business_person.png"):
        avatar = results[name].avatar
        p = Driver(avatar).drive(FaceControl.rest())
        K, wd, ht = source_intrinsics(avatar, 1024)
        face = avatar.part == PART_FACE
        vm = np.asarray(avatar.source_camera.viewmat, np.float64)
        out = rasterize(p.means[face], p.quats[face], p.scales[face], p.opacities[face],
                        np.zeros((int(face.sum()), 3), np.float32), vm, K, wd, ht, background=(1.0, 1.0, 1.0),
                        backend="cpu")
        lips = np.asarray(avatar.template_vertices, np.float64)[list(lmk.LIP_OUTER)] @ vm[:3, :3].T + vm[:3, 3]
        uv = lips[:, :2] / lips[:, 2:] * K[0, 0] + K[:2, 2]
        inner, outer = np.zeros((ht, wd), np.uint8), np.zeros((ht, wd), np.uint8)
        cv2.fillPoly(inner, [np.round(uv).astype(np.int32)], 1)
        cv2.fillPoly(outer, [np.round(uv.mean(0) + 1.8 * (uv - uv.mean(0))).astype(np.int32)], 1)
        ring = (outer > 0) & (inner == 0)
        assert ring.sum() > 3000
        gaps = float(np.mean(1.0 - np.asarray(out.image)[ring].mean(-1) < 0.9))
        assert gaps < 0.05, (name, gaps)


def test_the_mouth_interior_widens_with_the_lips_and_frame_0_gives_it_back():
    """A broad smile parts the lips ~8 mm wider than the rest mouth: the mouth interior (teeth, cavity; bound to the
    skull and the jaw, not to the lips) is stretched sideways with the inner lip corners (core.deform.mouth_stretch;
    without it the teeth kept the rest width, and FaceLandmarker put the render's mouth corners where they ended, well
    inside the lips' corners); only its middle (deform.MOUTH_STRETCH_SPAN of the corners' half spread each side):
    beyond, the teeth's ends and the cavity's walls shift as the middle's edge does (scaled whole, the walls went out
    through two_children_multiface's cheeks under lp_d0's smile); a pucker leaves it at the rest width (widen only), and
    the rest pose narrows a smiling photo's interior back by the same rule, so frame 0 gives it back where it was
    built."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.control import FaceControl
    from gaussian_head_ros.core.deform import DriveConfig
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.reconstruct.builder import GaussianBatch, to_avatar
    from gaussian_head_ros.core.reconstruct.rest_pose import to_rest_pose
    from gaussian_head_ros.core.reconstruct.template import template_faces

    v = _obj_vertices(shared("canonical_face", "face_model_with_iris.obj")) * 0.01 * np.array([1.0, -1.0, -1.0])
    faces = np.asarray(template_faces(), np.int64)
    a, b = lmk.MOUTH_CORNER_R_IN, lmk.MOUTH_CORNER_L_IN
    w0, cx = v[b, 0] - v[a, 0], 0.5 * (v[a, 0] + v[b, 0])
    smile = np.zeros_like(v)
    for i, s in ((a, -1.0), (b, 1.0), (lmk.MOUTH_CORNER_R, -1.0), (lmk.MOUTH_CORNER_L, 1.0)):
        smile[i, 0] = s * 0.004  # the corners 4 mm out each
    rng = np.random.default_rng(0)
    n = 200
    lip_y = 0.5 * (v[lmk.UPPER_LIP_IN, 1] + v[lmk.LOWER_LIP_IN, 1])
    means = np.stack([rng.uniform(-0.9, 0.9, n) * w0 + cx, lip_y + rng.uniform(-0.006, 0.006, n),
                      v[lmk.UPPER_LIP_IN, 2] + rng.uniform(0.006, 0.018, n)], 1)  # behind the lips (z away)
    built = GaussianBatch(means=means, normals=np.tile([0, 0, -1.0], (n, 1)), colors=np.full((n, 3), 0.5),
                          scales=np.full((n, 3), 1e-3), quats=np.tile([1.0, 0, 0, 0], (n, 1)), opacities=np.full(n, 0.9),
                          part=np.full(n, PART_MOUTH, np.uint8), face_id=np.full(n, -1, np.int32),
                          bary=np.stack([(means[:, 1] > lip_y).astype(float), np.zeros(n), np.zeros(n)], 1))
    rest = to_rest_pose(built, v + smile, v, faces, 0.0, DriveConfig())  # the photo's smile taken out

    def stretched(x, sx):  # the middle quarter of each side scaled by sx about the corners' middle; beyond, shifted
        u = np.clip(x - cx, -0.25 * w0, 0.25 * w0)
        return x + (sx - 1.0) * u

    stretch = (w0 + 0.008) / w0
    np.testing.assert_allclose(stretched(rest.means[:, 0], stretch), means[:, 0], atol=1e-6)  # narrowed back
    np.testing.assert_allclose(rest.means[:, 1:], means[:, 1:], atol=1e-6)  # sideways only
    outer = np.abs(means[:, 0] - cx) > 0.25 * w0 * stretch + 1e-4  # beyond the scaled middle
    assert 10 < outer.sum() < n - 10
    np.testing.assert_allclose(np.abs(means[outer, 0] - rest.means[outer, 0]), 0.002, atol=1e-6)  # its edge's move
    driver = Driver(to_avatar(rest, v, faces))
    np.testing.assert_allclose(driver.drive(FaceControl.rest()).means, rest.means, atol=1e-7)  # rest: untouched
    frame0 = driver.drive(FaceControl(expression=smile.astype(np.float32)))
    np.testing.assert_allclose(frame0.means, built.means, atol=1e-6)  # the photo's pose: as built
    wide = driver.drive(FaceControl(expression=(2.0 * smile).astype(np.float32)))  # corners 8 mm out each
    np.testing.assert_allclose(wide.means[:, 0], stretched(rest.means[:, 0], (w0 + 0.016) / w0), atol=1e-6)
    assert np.max(np.abs(wide.means[:, 0] - rest.means[:, 0])) < 0.004 + 1e-6  # half the corners' 8 mm at most
    pucker = driver.drive(FaceControl(expression=(-0.5 * smile).astype(np.float32)))  # corners 2 mm in each
    np.testing.assert_allclose(pucker.means, rest.means, atol=1e-7)  # widen only: a pucker keeps the rest width


def test_high_shoulders_hide_the_shirt_not_the_hair():
    """A sitter close to the lens (tpsmm) has shoulders rising above the chin's row, where the rows alone say
    "head": their hidden side took the head's far colour (the dark hair), and when the head nodded that side showed
    along the shoulders' top as a dark line over the shirt (issue 11, self PSNR; psnr16's attribution). Synthetic
    source view, 128 px: dark hair round a skin face, light shirt on shoulders whose top is at the mouth's row, above the chin's:
    the hidden side beside the head at the shoulders' top is the shirt (old: the hair, 0.1), the side behind the
    face's own rows stays the head's."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.reconstruct.completion import Scene
    from gaussian_head_ros.core.reconstruct.hidden_colours import hidden_colours, wall_colours
    from gaussian_head_ros.core.reconstruct.mesh_fit import MeshFitReconstructor
    from gaussian_head_ros.core.reconstruct.surfaces import pixel_rays
    from gaussian_head_ros.core.deform import smoothstep

    size, f = 128, 300.0
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ii, jj = np.mgrid[0:size, 0:size]
    head = ((jj - 64) / 24.0) ** 2 + ((ii - 52) / 32.0) ** 2 < 1
    face = ((jj - 64) / 16.0) ** 2 + ((ii - 56) / 22.0) ** 2 < 1
    shoulders = ii >= 68  # their top at the mouth's row, 9 px above the chin's
    person = head | shoulders
    hair, skin, shirt = np.array([0.1, 0.08, 0.07]), np.array([0.8, 0.6, 0.5]), np.array([0.85, 0.8, 0.7])
    photo = np.zeros((size, size, 3), np.float32)
    photo[head] = hair
    photo[face] = skin
    photo[shoulders & ~face] = shirt
    lm = np.zeros((478, 3))
    pts = {lmk.FOREHEAD: (64, 34), lmk.CHEEK_R: (48, 52), lmk.CHEEK_L: (80, 52), lmk.NOSE_BASE: (64, 62),
           lmk.MOUTH_CORNER_R: (58, 68), lmk.MOUTH_CORNER_L: (70, 68), lmk.CHIN: (64, 77)}
    for k in lmk.BROW_R + lmk.BROW_L:
        pts[k] = (64, 42)
    for k in lmk.OUTER_EYE:
        pts[k] = (64, 48)
    for k, (x, y) in pts.items():
        lm[k, :2] = x, y
    rows = np.arange(size, dtype=np.float64)[:, None] + 0.5
    wt = smoothstep(77.0, 87.0, rows) * np.ones((1, size))
    scene = Scene(K, np.eye(3), np.zeros(3), photo, person, np.where(person, 0.5, np.inf), pixel_rays(K, size), 1.0)
    rec = MeshFitReconstructor()
    h_back = np.full((size, size), rec.cfg.back_radius_m, np.float32)
    back, side, far, _, _ = hidden_colours(rec.cfg, scene, lm, face, person & ~(ii > 80), rows, wt, h_back)
    wall = wall_colours(rec.cfg, scene)  # the silhouette wall's front, beside them
    top = (slice(70, 76), np.r_[4:30, 98:124])  # the shoulders' top beside the head, above the chin's row
    for name, m in (("far side", far), ("back", back), ("side", side), ("wall", wall)):
        assert np.abs(m[top] - shirt).max() < 0.15, f"{name} at the shoulders' top is not the shirt: {m[top].min()}"
    assert np.abs(far[40:50, 40:44] - hair).max() < 0.1  # behind the head's side above the ear: still the hair


# ---------------------------------------------------------------------------------------------------
# a grinning photo's lips under an operator's "oo"

def _lip_heights(v: np.ndarray) -> np.ndarray:
    """[V, 3] template -> [2, 9] each lip's red height per column (upper, lower; outer minus inner contour, metres)."""
    from gaussian_head_ros.core import landmarks as lmk

    return np.stack([v[list(lmk.LIP_UPPER_INNER), 1] - v[list(lmk.LIP_UPPER_OUTER), 1],
                     v[list(lmk.LIP_LOWER_OUTER), 1] - v[list(lmk.LIP_LOWER_INNER), 1]])


@pytest.mark.parametrize("name", ["obama_official.jpg", "business_person.png"])
def test_an_oo_thins_the_lips_without_folding_them(results, name):
    """tpsmm_driving's "oo" (frames 43-58: corners 6 mm in each, the lower lip 10 -> 2 mm high at its sides) moved
    obama_official's rest lower lip, 5.0 mm high at its sides (its grin stretched it thin), by the operator's 8 mm:
    its outer edge crossed 1-1.5 mm above its inner one (-0.21 to -0.29 of its rest height) and the lower lip drew a thin crescent rising to the corners, a
    grin under a pucker (business_person: -2.4 mm). Every lip column at least 3 mm high at rest keeps a fifth of it
    (the operator's own kept 0.2 of its neutral's); the photo's own lips are not floored (self frame 0 unchanged)."""
    from conftest import tracked_controls

    from gaussian_head_ros.core.drive import Driver

    controls = tracked_controls("tpsmm_driving.mp4", max_frames=59, period_ns=40_000_000)[43:59]
    assert len(controls) >= 12
    drv = Driver(results[name].avatar)
    rest = _lip_heights(drv.verts)
    tall = rest >= 0.003
    worst = min(float(np.min((_lip_heights(drv.deformed_template(c)[0]) / rest)[tall])) for c in controls)
    assert worst >= 0.2, f"{name}: a lip column kept {worst:.2f} of its rest height under the operator's \"oo\""


def test_a_smiling_photo_s_squint_rests_opened(results):
    """A broad smile narrows the eyes, and the rest took the smile out of the mouth only: obama_official's and
    trump_official's avatars looked at the robot's user through their photos' squint with a relaxed mouth
    (FaceLandmarker on their rest renders: eyeBlink 0.25 / 0.21 and 0.27 / 0.26, the relaxed portraits' <= 0.12).
    Their lids rest opened towards expression.REST_LID_OPENING (expression.squint_of), the upper lids up and the
    lower down; the seven other portraits' lids (open, or not smiling) rest as before, but for the hooded-lid lift
    their low brows give them (expression.hooded_brow_lift: obama_speech)."""
    from gaussian_head_ros.core import expression as E
    from gaussian_head_ros.core.deform import LID_LOWER, LID_MID, LID_UPPER

    def gaps(v):  # [2] each eye's centre pair's gap, metres
        return (v[LID_LOWER, 1] - v[LID_UPPER, 1])[list(LID_MID)]

    def lower(v):  # [2] each eye's centre lower-lid point's height
        return v[LID_LOWER, 1][list(LID_MID)]

    grew = {}
    for name, res in results.items():
        rest = res.avatar.template_vertices.astype(np.float64)
        photo = rest + res.expression
        grew[name] = gaps(rest) / gaps(photo)
        if name in ("obama_official.jpg", "trump_official.png"):
            assert np.all(lower(rest) > lower(photo) + 2e-4), name  # the lower lids came down too
    print({k: np.round(v, 3).tolist() for k, v in grew.items()})
    assert np.all(grew["obama_official.jpg"] > 1.2) and np.all(grew["trump_official.png"] > 1.25)
    for name in set(grew) - {"obama_official.jpg", "trump_official.png", "obama_speech.jpg"}:
        assert np.all(np.abs(grew[name] - 1) < 1e-6), (name, grew[name])


@pytest.mark.parametrize("portrait", ["lp_d9_woman_turned.jpg", "obama_speech.jpg"])
def test_the_lower_row_stands_even_and_in_front_of_the_tongue_on_a_wide_open_photo(portrait):
    """A wide-open photo's rest lips meet with the upper one far behind the lower (lp_d9_woman_turned: 9.1 mm at the
    middle), and the interior's depth along the lips (mouth._lip_depth) interpolated the whole inner loop sorted by x,
    zigzagging between the two contours: the synthetic lower row's crowns stood at depths up to that far apart column
    by column and the tongue in front of some (lp_d18 frames 66 / 132: tall white bars between mauve columns;
    obama_speech: gappy rows with dark dots). Over the middle 20 mm, the crowns' depth spread (std) was 3.14 / 2.60 mm
    (lp_d9 / obama_speech; business_person 1.02) and the tongue's top 2.6 / 7.2 mm behind them at the middle; now
    0.71 / 0.96 mm and 7.8 / 7.8 mm (the rule's 15 - 7.2 mm)."""
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core.avatar import PART_MOUTH
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct.mouth import MouthConfig

    a = mesh_fit_result(read_image(str(shared("portraits", portrait)))).avatar
    cfg, scale, mu = MouthConfig(), disc_width(a), np.asarray(a.means, np.float64)
    v, jaw = np.asarray(a.template_vertices, np.float64), np.asarray(a.bary)[:, 0]
    mouth = np.asarray(a.part) == PART_MOUTH
    lower = mouth & np.isclose(scale, 0.7 * cfg.teeth_spacing_m, rtol=0.02) & (jaw > 0.01) & (jaw < 0.99)
    tongue = mouth & np.isclose(scale, 0.75 * cfg.tongue_spacing_m, rtol=0.02)

    def top(rows, half_m):  # the rows within half_m of the middle (x) and 3 mm of their highest point
        rows = np.flatnonzero(rows & (np.abs(mu[:, 0] - v[lmk.LOWER_LIP_IN, 0]) < half_m))
        return rows[mu[rows, 1] < mu[rows, 1].min() + 0.003]

    crowns = top(lower, 0.010)
    assert len(crowns) > 20, f"{portrait}: {len(crowns)} lower crowns in the middle"
    spread = float(np.std(mu[crowns, 2]))
    gap = float(np.median(mu[top(tongue, 0.004), 2]) - np.median(mu[top(lower, 0.004), 2]))
    assert spread < 0.0015, f"{portrait}: the lower crowns' depth spreads {spread * 1e3:.2f} mm"
    assert gap > 0.005, f"{portrait}: the tongue's top only {gap * 1e3:.1f} mm behind the lower crowns"
