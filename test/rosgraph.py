"""Helpers for tests across real processes: start node processes, spin until a condition holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def executable(name: str) -> list[str]:
    """The installed node/tool executable (from the colcon install space), run by this Python."""
    prefix = ROOT / "install" / "gaussian_head_ros"
    for sub in ("lib/gaussian_head_ros", "bin"):
        p = prefix / sub / name
        if p.exists():
            return [sys.executable, str(p)]
    raise FileNotFoundError(f"{name} is not installed under {prefix}; run 'make setup'")


class Proc:
    """A child process whose output goes to a log file (read it when a test fails)."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None):
        self.log_path = Path(log_path)
        self._fh = open(self.log_path, "wb")
        self.p = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                  start_new_session=True)

    def output(self) -> str:
        self._fh.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig=signal.SIGINT, timeout: float = 10.0) -> int | None:
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._fh.close()
        return self.p.returncode


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
