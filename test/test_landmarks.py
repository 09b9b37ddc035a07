"""core/landmarks.py against the mediapipe wheel's own constants and MediaPipe's canonical face model."""

import numpy as np
import pytest
from conftest import shared

from gaussian_head_ros.core import landmarks as lmk


def _points(edges) -> set:
    return {i for e in edges for i in e}


def test_index_sets_match_the_mediapipe_wheel():
    fm = pytest.importorskip("mediapipe.python.solutions.face_mesh")
    c = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    assert (lmk.NUM_MESH, lmk.NUM_LANDMARKS) == (fm.FACEMESH_NUM_LANDMARKS, fm.FACEMESH_NUM_LANDMARKS_WITH_IRISES)
    assert set(lmk.EYE_CONTOUR_R) == _points(c.FACEMESH_RIGHT_EYE)
    assert set(lmk.EYE_CONTOUR_L) == _points(c.FACEMESH_LEFT_EYE)
    assert set(lmk.IRIS_R) == _points(c.FACEMESH_RIGHT_IRIS) and set(lmk.IRIS_L) == _points(c.FACEMESH_LEFT_IRIS)
    assert set(lmk.BROW_R) == _points(c.FACEMESH_RIGHT_EYEBROW) and set(lmk.BROW_L) == _points(c.FACEMESH_LEFT_EYEBROW)
    assert set(lmk.LIPS) == _points(c.FACEMESH_LIPS)
    assert set(lmk.OVAL_ANCHORS) <= _points(c.FACEMESH_FACE_OVAL)
    for pairs, contour in ((lmk.EYELID_PAIRS_R, lmk.EYE_CONTOUR_R), (lmk.EYELID_PAIRS_L, lmk.EYE_CONTOUR_L)):
        lids = [i for p in pairs for i in p]
        assert len(set(lids)) == len(lids) and set(lids) <= set(contour)
    assert lmk.EYELID_MID_R in lmk.EYELID_PAIRS_R and lmk.EYELID_MID_L in lmk.EYELID_PAIRS_L


def test_named_points_on_the_canonical_face():
    obj = shared("canonical_face", "face_model_with_iris.obj")
    v = np.array([ln.split()[1:4] for ln in obj.read_text().splitlines() if ln.startswith("v ")], float)
    assert len(v) == lmk.NUM_LANDMARKS  # the .obj: +y up, +z towards the viewer, +x the subject's left
    assert int(np.argmax(v[:lmk.NUM_MESH, 2])) == lmk.NOSE_TIP
    assert int(np.argmin(v[:lmk.NUM_MESH, 1])) == lmk.CHIN
    assert v[lmk.FOREHEAD, 1] > v[lmk.NOSE_TIP, 1] > v[lmk.UPPER_LIP_IN, 1] > v[lmk.LOWER_LIP_IN, 1] > v[lmk.CHIN, 1]
    assert v[lmk.CHEEK_R, 0] < 0.95 * v[:lmk.NUM_MESH, 0].min() and v[lmk.CHEEK_L, 0] == -v[lmk.CHEEK_R, 0]
    for centre, ring, corners in ((lmk.IRIS_CENTER_R, lmk.IRIS_R, lmk.EYE_CORNERS[0]),
                                  (lmk.IRIS_CENTER_L, lmk.IRIS_L, lmk.EYE_CORNERS[1])):
        assert np.allclose(v[list(ring)].mean(0)[:2], v[centre, :2], atol=0.05)  # the centre of its ring
        lo, hi = sorted(v[list(corners), 0])
        assert lo < v[centre, 0] < hi  # between that eye's corners
    assert v[lmk.IRIS_CENTER_R, 0] < 0 < v[lmk.IRIS_CENTER_L, 0]  # subject's right eye: -x in the .obj
    for up, lo in lmk.EYELID_PAIRS_R + lmk.EYELID_PAIRS_L:
        assert v[up, 1] >= v[lo, 1]
