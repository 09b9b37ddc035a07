"""`gaussian-head eval`: self-reenactment on a clip with head motion beats the static baseline."""

import json
import subprocess
import sys

import pytest
from conftest import shared

pytestmark = pytest.mark.slow


def test_self_reenactment_beats_the_static_baseline():
    clip = shared("driving", "tpsmm_driving.mp4")
    out = subprocess.run([sys.executable, "-m", "gaussian_head_ros.cli", "eval", "--video", str(clip),
                          "--max-frames", "90", "--stride", "3", "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("psnr", "ssim", "lmk", "pose_deg", "mouth_corr", "psnr_static", "ssim_static", "lmk_static",
                "pose_deg_static", "mouth_corr_static"):
        assert m[key] is not None, key
    assert m["frames_evaluated"] >= 25 and m["render_face_rate"] >= 0.9
    assert m["psnr"] > m["psnr_static"] + 1.0
    assert m["ssim"] > m["ssim_static"]
    assert m["lmk"] < 0.5 * m["lmk_static"]
    assert m["pose_deg"] < m["pose_deg_static"]
    assert m["mouth_corr"] > 0.5


def test_eval_refuses_a_missing_clip(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gaussian_head_ros.cli", "eval", "--video", str(tmp_path / "no.mp4")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "not found" in out.stderr
