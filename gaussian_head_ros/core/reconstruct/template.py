"""The face template mesh topology, recovered at run time from what the mediapipe wheel ships.

Template vertex i is MediaPipe face-mesh landmark i (468 mesh points + 10 iris points, which no
triangle uses). The wheel ships no triangle list, only the edge list
`face_mesh_connections.FACEMESH_TESSELATION` (1322 undirected edges). Its triangles are recovered
combinatorially, so the result needs no landmark positions and is the same on every machine:

1. every 3-clique of the edge graph is a candidate (854);
2. a triangulated surface has at most two triangles per edge, so a candidate all of whose edges lie
   in three or more candidates is a separating 3-cycle, not a face (two, inside the nostrils);
   dropped, repeated until nothing changes;
3. the result is checked: every edge in one or two triangles, and the boundary is exactly four loops:
   the face oval, the two eye openings and the inner lip contour. Eyes and mouth stay holes, so the
   lids can close and the lips can part;
4. triangles are oriented consistently (neighbours traverse their shared edge in opposite
   directions), globally so that the face oval runs forehead -> subject's right cheek -> chin ->
   left cheek. In the head frame (x image-right, y down, z into the head) that makes every triangle
   counter-clockwise seen from the camera, normal (b - a) x (c - a) pointing out of the face (-z).

The tessellation is a different triangulation of the same surface than MediaPipe's canonical_face_model
.obj (about 200 quads have the other diagonal) and it has the three holes the .obj closes, so the
triangle sets agree up to those flips and holes (test/test_reconstruct.py checks exactly that).
"""

from __future__ import annotations

import functools
from collections import defaultdict

import numpy as np

from gaussian_head_ros.core import landmarks as lmk

NUM_MESH_VERTICES = lmk.NUM_MESH
NUM_TEMPLATE_VERTICES = lmk.NUM_LANDMARKS  # with the refined iris points, which no triangle uses
# Landmarks on the face oval in the order that a counter-clockwise (seen from the camera) walk visits them.
_OVAL_ORDER = lmk.OVAL_ANCHORS  # forehead, subject's right cheek (image left), chin, left cheek


def _edges() -> set[tuple[int, int]]:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return {(min(a, b), max(a, b)) for a, b in FACEMESH_TESSELATION if a != b}


def _tri_edges(t):
    a, b, c = t
    return ((a, b), (b, c), (a, c)) if a < b < c else tuple((min(x, y), max(x, y)) for x, y in ((a, b), (b, c), (a, c)))


def recover_triangles(edges: set[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Undirected edge set -> the faces of the triangulated surface it is the 1-skeleton of (unoriented)."""
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    cands = {tuple(sorted((a, b, k))) for a, b in edges for k in adj[a] & adj[b]}
    while True:
        count = defaultdict(int)
        for t in cands:
            for e in _tri_edges(t):
                count[e] += 1
        spurious = {t for t in cands if all(count[e] > 2 for e in _tri_edges(t))}
        if not spurious:
            break
        cands -= spurious
    over = [e for e, n in count.items() if n > 2]
    if over:
        raise ValueError(f"face tessellation is not a surface: edges {over[:5]} lie in more than two triangles")
    return sorted(cands)


def boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """[F, 3] oriented triangles -> boundary loops, each in the direction the triangles run along it."""
    directed = {}
    for a, b, c in faces:
        for u, v in ((a, b), (b, c), (c, a)):
            directed[(int(u), int(v))] = True
    nxt = {u: v for (u, v) in directed if (v, u) not in directed}
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, cur = [], start
        while cur not in seen:
            seen.add(cur)
            loop.append(cur)
            cur = nxt[cur]
        loops.append(loop)
    return loops


def _orient(tris: list[tuple[int, int, int]]) -> np.ndarray:
    """Consistent orientation by breadth-first propagation over shared edges."""
    by_edge = defaultdict(list)
    for i, t in enumerate(tris):
        for e in _tri_edges(t):
            by_edge[e].append(i)
    out = [None] * len(tris)
    for seed in range(len(tris)):
        if out[seed] is not None:
            continue
        out[seed] = tris[seed]
        queue = [seed]
        while queue:
            i = queue.pop()
            a, b, c = out[i]
            for u, v in ((a, b), (b, c), (c, a)):
                for j in by_edge[(min(u, v), max(u, v))]:
                    if j == i or out[j] is not None:
                        continue
                    x, y, z = tris[j]
                    w = ({x, y, z} - {u, v}).pop()
                    out[j] = (v, u, w)  # the neighbour runs along the shared edge the other way
                    queue.append(j)
    return np.asarray(out, np.int32)


@functools.lru_cache(maxsize=1)
def template_faces() -> np.ndarray:
    """[F, 3] int32 triangles of the face template (F = 852), oriented as the module docstring says."""
    faces = _orient(recover_triangles(_edges()))
    loops = boundary_loops(faces)
    oval = [lp for lp in loops if _OVAL_ORDER[0] in lp]
    if len(loops) != 4 or len(oval) != 1:
        raise ValueError(f"face tessellation has {len(loops)} boundary loops, expected 4 (oval, eyes, mouth)")
    pos = [oval[0].index(v) for v in _OVAL_ORDER]
    rel = [(p - pos[0]) % len(oval[0]) for p in pos]
    if rel != sorted(rel):  # the oval runs the other way round: flip every triangle
        faces = faces[:, [0, 2, 1]]
    faces.setflags(write=False)
    return faces


@functools.lru_cache(maxsize=1)
def hole_loops() -> dict[str, np.ndarray]:
    """The template's holes as ordered vertex loops: 'right_eye', 'left_eye' (subject's), 'mouth'."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    out = {}
    eye_r = {v for e in fmc.FACEMESH_RIGHT_EYE for v in e}
    eye_l = {v for e in fmc.FACEMESH_LEFT_EYE for v in e}
    lips = {v for e in fmc.FACEMESH_LIPS for v in e}
    for loop in boundary_loops(np.asarray(template_faces())):
        s = set(loop)
        if s <= eye_r:
            out["right_eye"] = loop
        elif s <= eye_l:
            out["left_eye"] = loop
        elif s <= lips:
            out["mouth"] = loop
    if set(out) != {"right_eye", "left_eye", "mouth"}:
        raise ValueError(f"could not identify the eye and mouth holes of the face tessellation (found {sorted(out)})")
    return {k: np.asarray(v, np.int32) for k, v in out.items()}


def fill_loop(loop: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """[L] ordered loop (as `hole_loops` gives it) + [V, 3] positions -> [L - 2, 3] triangles closing it
    (ear clipping in the loop's best-fit plane), oriented consistently with the surrounding surface."""
    loop = [int(v) for v in loop]
    p = vertices[loop].astype(np.float64)
    c = p.mean(0)
    _, _, vt = np.linalg.svd(p - c)
    uv = (p - c) @ vt[:2].T  # [L, 2]
    area = 0.5 * np.sum(uv[:, 0] * np.roll(uv[:, 1], -1) - np.roll(uv[:, 0], -1) * uv[:, 1])
    idx = list(range(len(loop)))
    tris = []
    sign = 1.0 if area > 0 else -1.0
    while len(idx) > 3:
        best, best_q = None, -np.inf
        for k in range(len(idx)):
            i0, i1, i2 = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            a, b, cc = uv[i0], uv[i1], uv[i2]
            cross = sign * ((b[0] - a[0]) * (cc[1] - a[1]) - (b[1] - a[1]) * (cc[0] - a[0]))
            if cross <= 1e-12:
                continue
            # Ear quality: the smallest angle-ish measure (area over the longest edge squared).
            q = cross / max(np.sum((a - b) ** 2), np.sum((b - cc) ** 2), np.sum((cc - a) ** 2))
            if q > best_q:
                best, best_q = k, q
        k = best if best is not None else 0
        tris.append((idx[k - 1], idx[k], idx[(k + 1) % len(idx)]))
        del idx[k]
    tris.append(tuple(idx))
    # Reversed: the surrounding triangles run along the loop, so a patch closing it must run against it.
    return np.asarray([[loop[a], loop[c], loop[b]] for a, b, c in tris], np.int32)


def mirror_vertices(vertices: np.ndarray) -> np.ndarray:
    """[V, 3] head-frame landmarks -> [V] index of each vertex's mirror image across the x = 0 plane
    (the assignment that minimises the total distance, so a real face's small asymmetries do not matter)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    v = np.asarray(vertices, np.float64)
    _, idx = linear_sum_assignment(cdist(v, v * np.array([-1.0, 1.0, 1.0])))  # a permutation, unlike nearest
    return idx.astype(np.int32)
