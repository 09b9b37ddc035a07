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


def test_a_clip_that_fades_in_from_black_is_refused_naming_its_first_frame():
    """Eval's source is the clip's first frame when no photo is given; a clip whose first frames are black (a fade-in,
    a lens cap) was refused with 'no face found in the photo', though no photo was given. The refusal names the first
    frame, says it is dark and what to do; with a photo given, the photo's own refusal is unchanged."""
    import numpy as np

    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate
    from gaussian_head_ros.core.reconstruct.base import NO_FACE, ReconstructionError

    frames = [np.zeros((256, 256, 3), np.uint8)] * 3
    cfg = EvalConfig(image_metrics=False, holes=False)
    with pytest.raises(ReconstructionError, match=r"clip's first frame .*dark, mean level 0 of 255.*--photo") as e:
        evaluate(frames, [0, 40_000_000, 80_000_000], None, cfg)
    assert e.value.code == NO_FACE
    with pytest.raises(ReconstructionError) as e:
        evaluate(frames, [0, 40_000_000, 80_000_000], np.full((256, 256, 3), 90, np.uint8), cfg)
    assert "first frame" not in str(e.value) and "no face found in the photo" in str(e.value)


def test_a_reader_that_is_no_face_landmarker_task_is_refused_before_any_work(tmp_path, capsys):
    """`eval --reader X` with X a wrong file or the face detector's model failed with 'cannot load FaceLandmarker
    model ...: Unable to open zip archive' once the avatar was made. Now each is refused first (the clip here does
    not exist: it is never opened), naming the file (absolute), what it is and the file to give; the tracker's
    model_path and the reader itself say it the same way (tracking.check_landmarker_task)."""
    import zipfile

    from gaussian_head_ros.cli import main
    from gaussian_head_ros.core.reader import FaceReader
    from gaussian_head_ros.core.tracking import TrackerConfig

    task = shared("models", "face_landmarker.task")
    with zipfile.ZipFile(task) as z:
        detector = z.extract("face_detector.tflite", tmp_path)  # what MediaPipe's face detector runs: one .tflite
        only_detector = tmp_path / "detector.task"
        with zipfile.ZipFile(only_detector, "w") as out:
            out.writestr("face_detector.tflite", z.read("face_detector.tflite"))
    text = tmp_path / "notes.task"
    text.write_text("not a model\n")
    clip = str(tmp_path / "never_opened.mp4")
    for reader, said in ((detector, "is a TensorFlow Lite model (.tflite) (one model, a face detector's maybe"),
                         (only_detector, "is not a FaceLandmarker bundle with blendshapes: it has no "
                                         "face_landmarks_detector.tflite, face_blendshapes.tflite"),
                         (text, "is no zip of MediaPipe models"), (tmp_path / "none.task", "not found")):
        capsys.readouterr()
        assert main(["eval", "--video", clip, "--reader", str(reader)]) == 1, reader
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"reader model {reader} {said}" in err[0], err
        assert "give MediaPipe's face_landmarker.task" in err[0], err
    with pytest.raises(ValueError, match="FaceLandmarker model .*TensorFlow Lite model.* or '' for the bundled face"):
        TrackerConfig(model_path=str(detector)).validate()
    with pytest.raises(ValueError, match="reader model .*TensorFlow Lite model"):
        FaceReader(str(detector))


def test_the_report_names_the_rasterizer_that_drew_not_auto():
    """`gaussian-head eval --render-backend auto` printed `render_backend: auto` in its report, not the rasterizer that
    drew the frames (cpu here, gsplat on a CUDA machine): two reports from two machines could not be told apart nor
    compared (lead, session 61). The report names the backend auto resolved to (render.runnable_backend), the one each
    frame was drawn with."""
    from conftest import mesh_fit_result

    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate
    from gaussian_head_ros.core.render import runnable_backend
    from gaussian_head_ros.core.video import read_frames

    frames = read_frames(str(shared("driving", "tpsmm_driving.mp4")), max_frames=2)
    rgb = [f.rgb for f in frames]
    cfg = EvalConfig(render_backend="auto", image_metrics=False, holes=False)
    m = evaluate(rgb, [f.stamp_ns for f in frames], None, cfg, avatar=mesh_fit_result(rgb[0], "eval").avatar)
    assert m["frames_rendered"] == 2, m
    assert m["render_backend"] == runnable_backend("auto") != "auto", m["render_backend"]
