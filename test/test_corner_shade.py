"""A grinning photo's dark mouth corners follow the template's lip corners (core/corner_shade.py)."""

import numpy as np
import pytest
from conftest import mesh_fit_result, render_in_photo_camera, shared, tracked_controls

from gaussian_head_ros.core import landmarks as lmk
from gaussian_head_ros.core.drive import Driver

PERIOD_NS = 33_333_333
# tpsmm_driving: frame 10 a relaxed mouth, frames 46-52 a pucker ("oo") whose template narrows 9-11 mm (oo61)
RELAXED, PUCKER = 10, (46, 49, 52)


def _width_px(px: np.ndarray) -> float:
    return float(np.linalg.norm(px[lmk.MOUTH_CORNER_L, :2] - px[lmk.MOUTH_CORNER_R, :2]))


@pytest.mark.parametrize("name", ["obama_official.jpg", "trump_official.png"])
def test_a_grins_dark_corners_narrow_with_the_lips_under_a_pucker(name):
    """The drawn mouth (the reader's outer corners 61-291 on the render, photo's camera) narrows from a relaxed frame
    to a pucker by, on the mean over frames 46 / 49 / 52, at least 0.4 of the driven template's narrowing. Before
    core.corner_shade the photo's dark grin line stayed where the photo had it, past the narrowed lips, and the reader
    put the corners at its end: obama_official 0.28 / 0.27 / 0.38 (mean 0.31), trump_official 0.27 / 0.26 / 0.23
    (0.25); with it 0.61 / 0.46 / 0.56 (0.55) and 0.62 / 0.43 / 0.52 (0.52) (corner61; trump_official's left corner
    is still read on the grin's crease rising towards the cheek, off the lip line the rule moves)."""
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reader import FaceReader

    avatar = mesh_fit_result(read_image(str(shared("portraits", name)))).avatar
    controls = tracked_controls("tpsmm_driving.mp4", max(PUCKER) + 1, PERIOD_NS)
    driver = Driver(avatar)
    shares = []
    with FaceReader(str(shared("models", "face_landmarker.task")), video=False) as reader:
        def widths(i):
            img, template_px = render_in_photo_camera(driver, controls[i], avatar)
            read = reader.read((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
            assert read is not None, f"{name}: the reader found no face on frame {i}'s render"
            return _width_px(read.landmarks_px), _width_px(template_px)

        drawn0, template0 = widths(RELAXED)
        for i in PUCKER:
            drawn, template = widths(i)
            assert template0 - template > 0.05 * template0, f"frame {i}: the template does not narrow"
            shares.append((drawn0 - drawn) / (template0 - template))
    assert np.mean(shares) >= 0.4, f"{name}: drawn mouth narrows {np.round(shares, 2)} of the template's"
