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
