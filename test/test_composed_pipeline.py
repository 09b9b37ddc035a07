"""avatar_pipeline: the three nodes and a video source composed in one process (for set-ups without
`ros2 launch`) serve the same topics as the separate executables and shut down cleanly.

Its own module, so no other test's node processes publish on the same topics meanwhile."""

import pytest
from conftest import shared

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_composed_pipeline_runs_the_same_nodes_in_one_process(rclpy_context, tmp_path):
    import sys

    from gaussian_head_ros.nodes.launcher import FaceDisplayRecorder, NodeProcess, package_prefix, package_share

    exe = package_prefix() / "lib" / "gaussian_head_ros" / "avatar_pipeline"
    extra = tmp_path / "small.yaml"  # a second parameters file on top of the package's
    extra.write_text("render_node:\n  ros__parameters:\n    width: 192\n    height: 192\n")
    proc = NodeProcess("avatar_pipeline", [
        sys.executable, str(exe), "--params-file", str(package_share() / "config" / "avatar.yaml"),
        "--photo", str(shared("portraits", "lp_d8_man_glasses.jpg")), "--video", str(shared("driving", "lp_d0.mp4")),
        "--backend", "cpu", "--ros-args", "--params-file", str(extra)], tmp_path)
    rec = FaceDisplayRecorder(keep_frames=2)
    try:
        assert rec.wait_for(lambda: any(s.ok for s in rec.statuses), 90), proc.log()[-3000:]
        rec.reset()
        assert rec.wait_for(lambda: len(rec.stats.arrivals) >= 20, 30), proc.log()[-3000:]
        assert rec.stats.sizes == {(192, 192, "rgb8")}
        assert rec.statuses[-1].operator_id == "lp_d8_man_glasses"
    finally:
        rec.close()
        code = proc.stop()
    assert code == 0 and "Traceback" not in proc.log(), proc.log()[-3000:]
