"""What the face display shows while the operator swaps (a new avatar replaces the one shown): a dip.

The face shown fades to the display's background over the first half of the transition, then the new face fades in
from it over the second half (render_node's `crossfade_s`: the whole of it; 0 = a cut). Every frame shows one avatar,
drawn once and weighted against the background (`fade_to_background`), never two faces at once; the virtual camera
of a frame is the framing of the avatar it shows (render_node's camera_info stays truthful). `Dip.at` says which
avatar a frame draws, `Dip.weight` how much of it the frame shows.

Why not a cross-fade (the old avatar's frame and the new one's blended pixel by pixel, render_node before swap56):
two heads of different shape and framing half and half read as a ghosted double face, two pairs of eyes and two
mouths, for most of the fade (business_person -> obama_official at rest, and business_person -> lp_d9_woman_turned
with the jaw open and the head turned 25 deg: the frames 0.15-0.45 s into the 0.5 s fade). It also drew both avatars
per frame: on the loaded 2-core machine the 512x512 display fell from 26-30 FPS to 12-18 FPS for the fade (26-28
with a dip). Why not a cut (crossfade_s 0, still offered): the face jumps to another person, framed anew, from one
frame to the next, which reads as a glitch of the display rather than a new person arriving.

A swap during a dip (a third avatar arrives) starts a new dip from what the display shows at that moment: the face
visible then, at its weight, fades out from there (sooner, by the share already faded), and the newest avatar fades
in; an avatar that was never shown is never drawn.

Times are the caller's monotonic clock in seconds. Avatars are opaque objects here (the render node's `Loaded`, nodes/avatar_loader.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaussian_head_ros.core.render.base import to_rgb8


def ease(x: float) -> float:
    """Smoothstep of x clipped to [0, 1]: a face's weight for its linear level (no step in speed where a fade starts
    or ends)."""
    x = min(max(float(x), 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, eq=False)
class Dip:
    """One transition from the avatar `old` (shown at level `level0` when it began: 1 = fully) to `new` (compared by
    identity: render_node asks whether the dip in progress is still the one it drew)."""

    old: Any  # the avatar on the display when the swap came: faded out first
    new: Any  # the avatar swapped in: faded in once `old` is gone
    start_s: float  # when the dip began (monotonic seconds)
    half_s: float  # seconds of one fade from a fully shown face to the background (half of crossfade_s), > 0
    level0: float = 1.0  # old's linear level at start_s (below 1: a swap during a dip, faded out from there)

    @property
    def bottom_s(self) -> float:
        """When `old` is gone and `new` begins to fade in (monotonic seconds)."""
        return self.start_s + self.level0 * self.half_s

    @property
    def end_s(self) -> float:
        """When `new` is fully shown and the dip is over (monotonic seconds)."""
        return self.bottom_s + self.half_s

    def level(self, now_s: float) -> tuple[Any, float]:
        """(the avatar the display shows at `now_s`, its linear level 0..1): `old` until bottom_s, then `new`."""
        if now_s < self.bottom_s:
            return self.old, min(max(self.level0 - (now_s - self.start_s) / self.half_s, 0.0), 1.0)
        return self.new, min((now_s - self.bottom_s) / self.half_s, 1.0)

    def at(self, now_s: float) -> tuple[Any, bool]:
        """(the one avatar to draw at `now_s`, whether the dip is over: `new` in full from then on)."""
        return self.level(now_s)[0], now_s >= self.end_s

    def weight(self, avatar: Any, now_s: float) -> float:
        """0..1: how much of `avatar` the display shows at `now_s`, against the background (0 for an avatar not shown
        then: `old` after bottom_s, `new` before it, any other). Taken when a frame is published, after its draw: the
        first frame of a newly shown avatar took 80-360 ms to draw in render_node on the loaded 2-core machine (its
        first rasterization), and weighted by its start it came out at the bottom's weight 0.03 and the next at 0.3."""
        shown, level = self.level(now_s)
        return ease(level) if shown is avatar else 0.0


def start_dip(current: Dip | None, shown: Any, new: Any, now_s: float, duration_s: float) -> Dip | None:
    """The transition to begin when `new` is swapped in at `now_s` (None: a cut, `new` drawn at once and in full).

    current: the dip in progress (None: none, or over); shown: the avatar on the display outside a dip (None: the
    placeholder, which is cut from); duration_s: crossfade_s, the whole dip from a fully shown face (<= 0: a cut).
    During a dip, the face it shows now fades out from its level now, and the avatar it was going to fade in, when
    not shown yet, is dropped."""
    if duration_s <= 0.0:
        return None
    if current is not None and now_s < current.end_s:
        shown, level = current.level(now_s)
    else:
        level = 1.0
    if shown is None:
        return None
    return Dip(old=shown, new=new, start_s=now_s, half_s=0.5 * duration_s, level0=level)


def fade_to_background(img: np.ndarray, background, weight: float) -> np.ndarray:
    """img [H, W, 3] uint8 weighted against the background: background + weight x (img - background), rounded,
    [H, W, 3] uint8 (img itself at weight 1).

    background [3] float r g b in 0..1 (render_node's `background`, taken as the rasterizer fills it: render.base's
    to_rgb8, so that weight 0 is exactly the background the rasterizer draws); weight in 0..1 (ValueError outside).
    Through one lookup table per channel (cv2.LUT): 512x512 in ~2 ms, where the same sum in float32 numpy took 9-25 ms
    on the loaded 2-core machine."""
    import cv2

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fade weight {weight} is outside 0..1")
    if weight >= 1.0:
        return img
    bg = to_rgb8(np.asarray(background, np.float32).reshape(1, 3)).astype(np.float32)  # the level the rasterizer fills
    levels = np.arange(256, dtype=np.float32)[:, None]
    lut = np.clip(np.floor(bg + (levels - bg) * np.float32(weight) + 0.5), 0, 255).astype(np.uint8)  # [256, 3]
    return cv2.LUT(np.ascontiguousarray(img), lut.reshape(256, 1, 3))
