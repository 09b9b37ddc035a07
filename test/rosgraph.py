"""Helpers for tests across real processes: start node processes, spin until a condition holds."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gaussian_head_ros.nodes.launcher import NodeProcess

ROOT = Path(__file__).resolve().parents[1]


def executable(name: str) -> list[str]:
    """The installed node/tool executable (from the colcon install space), run by this Python."""
    prefix = ROOT / "install" / "gaussian_head_ros"
    for sub in ("lib/gaussian_head_ros", "bin"):
        p = prefix / sub / name
        if p.exists():
            return [sys.executable, str(p)]
    raise FileNotFoundError(f"{name} is not installed under {prefix}; run 'make setup'")


class Proc(NodeProcess):
    """A child process whose output goes to the log file `log_path` (read it when a test fails)."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None):
        super().__init__(Path(log_path).stem, cmd, Path(log_path).parent, env, log_path=log_path)

    @property
    def p(self):
        return self.proc

    def output(self) -> str:
        return self.log()


def spin_until(node, predicate, timeout: float, executor=None) -> bool:
    """Spin `node` until predicate() is true or timeout seconds pass."""
    import rclpy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if executor is not None:
            executor.spin_once(timeout_sec=0.05)
        else:
            rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()
