"""MediaPipe face mesh wrapper and the head frame fitted to it, on real photos."""

import cv2
import numpy as np
import pytest
from conftest import shared

from gaussian_head_ros.core.control import euler_deg, matrix_to_quat
from gaussian_head_ros.core.facemesh import CANONICAL_EYE_SPAN, FaceMesh, default_intrinsics, fit_head_frame
from gaussian_head_ros.core.imageio import read_image


@pytest.fixture(scope="module")
def mesh():
    with FaceMesh() as m:
        yield m


def test_frontal_portrait_head_frame(mesh):
    img = read_image(str(shared("portraits", "trump_official.png")))
    faces = mesh.detect(img)
    assert len(faces) == 1 and faces[0].landmarks_px.shape == (478, 3)
    fit = fit_head_frame(faces[0].landmarks_px, default_intrinsics(img.shape[1], img.shape[0]))
    e = euler_deg(matrix_to_quat(fit.rotation))
    assert abs(e["yaw"]) < 15 and abs(e["pitch"]) < 15 and abs(e["roll"]) < 10
    c = fit.canonical
    assert np.linalg.norm(c[263] - c[33]) == pytest.approx(CANONICAL_EYE_SPAN, rel=1e-4)
    assert c[1, 2] < -0.05  # the nose tip sticks out towards the camera (-z)
    assert c[152, 1] > c[10, 1]  # the chin is below the forehead (+y is down)
    assert c[263, 0] > c[33, 0]  # the subject's left eye is on the image right (+x)
    assert 0.2 < fit.translation[2] < 1.5  # a head-and-shoulders photo is taken from arm's length or so


def test_yaw_sign_follows_a_mirrored_photo(mesh):
    img = read_image(str(shared("portraits", "lp_s9_monalisa.jpg")))
    K = default_intrinsics(img.shape[1], img.shape[0])
    yaw = euler_deg(matrix_to_quat(fit_head_frame(mesh.detect(img)[0].landmarks_px, K).rotation))["yaw"]
    flipped = np.ascontiguousarray(img[:, ::-1])
    yaw_f = euler_deg(matrix_to_quat(fit_head_frame(mesh.detect(flipped)[0].landmarks_px, K).rotation))["yaw"]
    assert abs(yaw) > 8 and yaw_f == pytest.approx(-yaw, abs=4)


def test_two_faces_largest_first(mesh):
    img = read_image(str(shared("portraits", "two_children_multiface.jpeg")))
    faces = mesh.detect(img)
    assert len(faces) == 2 and faces[0].area >= faces[1].area


def test_small_face_in_a_large_frame(mesh):
    img = read_image(str(shared("portraits", "trump_official.png")))
    big = np.full((2000, 3000, 3), 90, np.uint8)
    big[1200:1280, 500:580] = cv2.resize(img, (80, 80), interpolation=cv2.INTER_AREA)  # face ~45 px wide
    faces = mesh.detect(big)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].bbox
    assert 500 <= x0 < x1 <= 580 and 1200 <= y0 < y1 <= 1280


def test_no_face_and_bad_input(mesh):
    assert mesh.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    with pytest.raises(ValueError):
        mesh.detect(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        fit_head_frame(np.zeros((10, 3)), np.eye(3))


def _obj_vertices(path) -> np.ndarray:
    return np.array([[float(x) for x in line.split()[1:4]] for line in open(path) if line.startswith("v ")])


def test_mesh_mirror_is_the_canonical_faces_own_mirror():
    """landmarks.MESH_MIRROR is what mirror_vertices gives on MediaPipe's canonical face model (../shared's copy): a
    permutation that is its own inverse, eye corners, mouth corners and cheek sides swapped, the midline kept."""
    from gaussian_head_ros.core.landmarks import MESH_MIRROR, NUM_MESH
    from gaussian_head_ros.core.reconstruct.template import mirror_vertices

    v = _obj_vertices(shared("canonical_face", "canonical_face_model.obj"))
    assert v.shape == (NUM_MESH, 3)
    m = np.asarray(MESH_MIRROR)
    assert np.array_equal(m, mirror_vertices(v))
    assert np.array_equal(m[m], np.arange(NUM_MESH))
    assert [m[i] for i in (33, 133, 61, 234, 98)] == [263, 362, 291, 454, 327]
    assert all(m[i] == i for i in (4, 10, 13, 14, 152))


def test_lower_face_is_the_canonical_faces_points_below_the_nose():
    """landmarks.LOWER_FACE is the canonical face model's points more than LOWER_FACE_BELOW_NOSE_CM below the nose
    base, less the rigid ones and the face oval (landmarks.FACE_OVAL, MediaPipe's FACEMESH_FACE_OVAL): the lips, the
    mouth corners and the point below the lower lip in it, the nose, the eyes and the jaw's outline not; it is its own
    mirror image."""
    import mediapipe as mp

    from gaussian_head_ros.core import landmarks as lmk

    assert set(lmk.FACE_OVAL) == {i for e in mp.solutions.face_mesh_connections.FACEMESH_FACE_OVAL for i in e}
    v = _obj_vertices(shared("canonical_face", "canonical_face_model.obj"))
    below = np.where(v[:, 1] < v[lmk.NOSE_BASE, 1] - lmk.LOWER_FACE_BELOW_NOSE_CM)[0]
    assert lmk.LOWER_FACE == tuple(int(i) for i in below if i not in set(lmk.RIGID_LANDMARKS) | set(lmk.FACE_OVAL))
    assert set(np.asarray(lmk.MESH_MIRROR)[list(lmk.LOWER_FACE)]) == set(lmk.LOWER_FACE)
    assert {13, 14, 61, 291, 17, lmk.BELOW_LOWER_LIP}.issubset(lmk.LOWER_FACE)
    assert not {lmk.NOSE_TIP, lmk.NOSE_BASE, 33, 263, 10, 152, 172, 397}.intersection(lmk.LOWER_FACE)


def _lower_shape_gap(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance, pixels, between two readings' LOWER_FACE points after the similarity that best aligns them."""
    from gaussian_head_ros.core.facemesh import similarity_fit
    from gaussian_head_ros.core.landmarks import LOWER_FACE

    s, rot, t, resid = similarity_fit(a[list(LOWER_FACE)], b[list(LOWER_FACE)])
    return resid * s


def test_mirror_average_reads_the_mouth_alike_mirrored_and_keeps_the_pose_points():
    """With mirror_average the face mesh's mouth and jaw (landmarks.LOWER_FACE) are flip-equivariant in shape: a photo
    mirrored left to right gives the photo's own lower face, mirrored, up to a similarity (where the plain reading
    puts the head); the plain readings of the two pictures differ in shape by ~1 px RMS on this photo (the model's
    bias the average takes out). Every other point, the rigid ones the tracker's pose comes from included, is the
    plain reading's exactly."""
    img = read_image(str(shared("portraits", "obama_official.jpg")))
    w = img.shape[1]
    flipped = np.ascontiguousarray(img[:, ::-1])
    from gaussian_head_ros.core.landmarks import LOWER_FACE, MESH_MIRROR, NUM_MESH

    def mirrored_back(p):
        q = p[list(MESH_MIRROR)].copy()
        q[:, 0] = w - q[:, 0]
        return q

    with FaceMesh(max_faces=1) as avg, FaceMesh(max_faces=1, mirror_average=False) as plain:
        a = avg.detect(img)[0].landmarks_px[:NUM_MESH].astype(np.float64)
        b = mirrored_back(avg.detect(flipped)[0].landmarks_px[:NUM_MESH].astype(np.float64))
        p = plain.detect(img)[0].landmarks_px[:NUM_MESH].astype(np.float64)
        q = mirrored_back(plain.detect(flipped)[0].landmarks_px[:NUM_MESH].astype(np.float64))
    width = a[:, 0].max() - a[:, 0].min()
    assert _lower_shape_gap(a, b) < 1e-4 * width
    assert _lower_shape_gap(p, q) > 2e-3 * width  # the bias the average takes out
    other = np.setdiff1d(np.arange(NUM_MESH), LOWER_FACE)
    assert np.array_equal(a[other], p[other])
    assert 0 < np.abs(a[list(LOWER_FACE), :2] - p[list(LOWER_FACE), :2]).max() < 0.02 * width
