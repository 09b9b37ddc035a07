"""One Euro filter (Casiez, Roussel, Vogel, CHI 2012) for vectors, landmark sets and quaternions.

A first-order low-pass whose cutoff rises with the signal's speed: still signals are smoothed hard
(jitter goes away), fast ones pass almost unfiltered (little lag). For an input moving at speed v
the filter lags by tau = 1 / (2 pi (min_cutoff + beta * v)) seconds.

Arrays are filtered row-wise: a [..., D] array is a set of D-vectors, each with its own cutoff from
its own speed (the norm of its velocity), so a landmark set [L, 3] adapts per landmark and a
quaternion [4] as one whole. `unit` says how many of the signal's units make one "filter unit"
(speeds are divided by it before beta multiplies them), so one beta serves radians, metres and
coefficients alike.

Time: each call takes the sample's time in seconds. A sample that is not newer than the previous
one (dt <= 0) does not update the state: the previous output is returned again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class OneEuroConfig:
    """Parameters of the One Euro filter (the same meaning as in the paper)."""

    min_cutoff: float = 1.0  # Hz: cutoff for a still signal; lower = less jitter, more lag when slow
    beta: float = 0.0  # how fast the cutoff rises with speed (per filter unit/s); higher = less lag when fast
    d_cutoff: float = 1.0  # Hz: cutoff of the speed estimate itself

    def validate(self) -> None:
        """Raise ValueError when min_cutoff or d_cutoff is not a positive finite frequency (Hz) or beta is
        negative or not finite."""
        for name in ("min_cutoff", "d_cutoff"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"One Euro {name} must be a positive frequency in Hz, got {v}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"One Euro beta must be >= 0, got {self.beta}")


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing weight of a first-order low-pass at `cutoff` Hz for a step of dt seconds."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter on arrays [..., D] (rows filtered independently; a scalar is treated as [1])."""

    def __init__(self, config: OneEuroConfig | None = None, unit: float = 1.0):
        self.config = config or OneEuroConfig()
        self.config.validate()
        if not unit > 0:
            raise ValueError(f"filter unit must be positive, got {unit}")
        self.unit = float(unit)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x = None  # [..., D] last output
        self._dx = None  # [..., D] last filtered velocity
        self._t = None  # time of the last sample, seconds

    @property
    def initialized(self) -> bool:
        """Whether the filter has a state: the first sample (or one of another shape) passes unfiltered."""
        return self._x is not None

    def __call__(self, x, t: float) -> np.ndarray:
        """Filter one sample taken at time t (seconds). Returns float64 of x's shape."""
        x = np.asarray(x, np.float64)
        shape = x.shape
        v = x.reshape(-1, 1) if x.ndim == 0 else x
        if self._x is None or self._x.shape != v.shape:
            self._x, self._dx, self._t = v.copy(), np.zeros_like(v), float(t)
            return self._x.reshape(shape).copy()
        dt = float(t) - self._t
        if not dt > 0:
            return self._x.reshape(shape).copy()
        c = self.config
        dx = (v - self._x) / dt
        self._dx = self._dx + smoothing_factor(c.d_cutoff, dt) * (dx - self._dx)
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True) / self.unit  # [..., 1]
        a = smoothing_factor(c.min_cutoff + c.beta * speed, dt)
        self._x = self._x + a * (v - self._x)
        self._t = float(t)
        return self._x.reshape(shape).copy()


class QuaternionFilter(OneEuroFilter):
    """One Euro filter for a unit quaternion [4] (w x y z): keeps the input on the hemisphere of the
    last output (q and -q are the same rotation) and renormalises. `unit` defaults to 0.5 so speeds
    are in radians per second (a rotation by a small angle a moves the quaternion by about a/2)."""

    def __init__(self, config: OneEuroConfig | None = None, unit: float = 0.5):
        super().__init__(config, unit)

    def __call__(self, q, t: float) -> np.ndarray:
        q = np.asarray(q, np.float64)
        if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-9:
            raise ValueError(f"need a finite non-zero quaternion [4], got {q}")
        q = q / np.linalg.norm(q)
        if self._x is not None and float(q @ self._x.reshape(4)) < 0:
            q = -q
        out = super().__call__(q, t)
        out /= np.linalg.norm(out)
        self._x = out.copy()  # keep the state on the unit sphere
        return out
