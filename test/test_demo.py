"""`gaussian-head demo` (what `make demo` runs): the real nodes over DDS, and what it leaves behind."""

from __future__ import annotations

import subprocess
import sys

from conftest import shared

from gaussian_head_ros.core import avatar_cache


def test_demo_leaves_the_robots_avatar_cache_alone(tmp_path, monkeypatch):
    """The demo's reconstruction_node must not write its demo face into the default avatar cache: a robot on this
    machine keeps its operator's avatar there ($ROS_HOME/gaussian_head_ros/reconstruction_node.avatar) and serves
    it again at its next start without a photo. Before the fix, after `make demo` the robot came back with the
    demo's face (seen: a trump_official demo replaced the cached operator)."""
    photo = shared("portraits", "astronaut_eileen_collins.png")
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))  # inherited by the demo and its nodes
    cache = avatar_cache.default_path("", "reconstruction_node")  # where a robot's reconstruction_node keeps it
    cache.parent.mkdir(parents=True)
    kept = b"the operator's avatar cache: must survive the demo"
    cache.write_bytes(kept)
    out = tmp_path / "demo.mp4"
    run = subprocess.run([sys.executable, "-m", "gaussian_head_ros.cli", "demo", "--photo", str(photo),
                          "--seconds", "0.5", "--size", "128", "--output", str(out), "--logs", str(tmp_path / "logs")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[demo] avatar: " in run.stdout  # the reconstruction ran and was published
    assert out.is_file() and out.stat().st_size > 0
    assert cache.read_bytes() == kept, "the demo replaced the robot's cached avatar"
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]  # nor left another cache beside it
