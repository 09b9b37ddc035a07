"""Holes: pixels where the background shows through the head.

A render is composited on black and on white. The rasterizer composites linearly (colour on black plus
(1 - alpha) x background), so `on_white - on_black = 1 - alpha` in every channel: a pixel is
see-through where that difference, averaged over the channels, exceeds 1 - HOLE_ALPHA, i.e. where the
head covers less than HOLE_ALPHA of it. The background around the head is see-through too; it is
removed by keeping only see-through pixels NOT connected to the image border (connected components of
the see-through mask, 4-connectivity, so two see-through pixels touching only at a corner are not joined
and a gap sealed by a diagonal line of head pixels stays a hole). What is left is background inside the
head's silhouette: a gap at the chin/neck junction, a seam, a sparse patch.

HOLE_ALPHA = 0.5: at this coverage the background contributes as much to the pixel as the head, so
below it the pixel reads as background on a contrasting display (a black robot screen behind skin).
The anti-aliased rim of the silhouette (alpha falling from 1 to 0 over 1-2 px) is connected to the
outside background and never counted. A real gap is near alpha 0 at its centre, so the count does not
hinge on the exact threshold.

Counts are given in pixels of the image and, for comparing clips of different sizes, scaled to a
512 x 512 frame (`px512 = px x 512^2 / (H W)`).
"""

from __future__ import annotations

import numpy as np

HOLE_ALPHA = 0.5  # a pixel whose head coverage (alpha) is below this is see-through
REFERENCE_PIXELS = 512 * 512  # frame area the `px512` counts are scaled to


def composite(image_on_black: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """[H, W, 3] float colour composited on black (what `rasterize` returns) + [H, W] alpha + an rgb
    background in [0, 1] -> [H, W, 3] float the render on that background."""
    return np.asarray(image_on_black, np.float32) + (1.0 - np.asarray(alpha, np.float32))[..., None] * \
        np.asarray(background, np.float32).reshape(1, 1, 3)


def see_through(on_black: np.ndarray, on_white: np.ndarray, alpha_threshold: float = HOLE_ALPHA) -> np.ndarray:
    """The same render on black and on white ([H, W, 3], both float in [0, 1] or both uint8) -> [H, W] bool,
    True where the head covers less than alpha_threshold of the pixel."""
    b, w = np.asarray(on_black), np.asarray(on_white)
    if b.shape != w.shape or b.ndim != 3 or b.shape[2] != 3:
        raise ValueError(f"need two [H, W, 3] renders of the same size, got {b.shape} and {w.shape}")
    scale = 255.0 if b.dtype == np.uint8 else 1.0
    transmittance = (w.astype(np.float32) - b.astype(np.float32)).mean(axis=2) / scale  # = 1 - alpha
    return transmittance > 1.0 - alpha_threshold


def enclosed(mask: np.ndarray) -> np.ndarray:
    """[H, W] bool see-through mask -> [H, W] bool its pixels not 4-connected to the image border."""
    import cv2

    m = np.ascontiguousarray(mask, np.uint8)
    if m.ndim != 2:
        raise ValueError(f"need an [H, W] mask, got {m.shape}")
    _, labels = cv2.connectedComponents(m, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return (labels > 0) & ~np.isin(labels, border)


def hole_mask(on_black: np.ndarray, on_white: np.ndarray, alpha_threshold: float = HOLE_ALPHA) -> np.ndarray:
    """The render on black and on white -> [H, W] bool holes (see-through and enclosed by the head)."""
    return enclosed(see_through(on_black, on_white, alpha_threshold))


def count_holes(image_on_black: np.ndarray, alpha: np.ndarray, alpha_threshold: float = HOLE_ALPHA) -> int:
    """A rasterizer's output ([H, W, 3] colour on black, [H, W] alpha; numpy) -> the number of hole pixels.

    The function other checks should call: e.g. `count_holes(out.image, out.alpha) == 0` for a
    `rasterize()` result `out`."""
    img = np.asarray(image_on_black, np.float32)
    return int(hole_mask(img, composite(img, alpha, (1.0, 1.0, 1.0)), alpha_threshold).sum())


class HoleStats:
    """Per-frame hole counts of a clip -> mean, p95 and max, in pixels scaled to a 512^2 frame."""

    def __init__(self):
        self.px512: list[float] = []

    def add(self, image_on_black: np.ndarray, alpha: np.ndarray) -> int:
        """Counts one frame's holes; returns the raw pixel count."""
        n = count_holes(image_on_black, alpha)
        h, w = np.asarray(alpha).shape[:2]
        self.px512.append(n * REFERENCE_PIXELS / float(h * w))
        return n

    def summary(self) -> dict:
        """The frames' hole counts (pixels scaled to a 512 x 512 frame): holes_mean_px512, holes_p95_px512,
        holes_max_px512 (rounded to 0.01) and holes_frames_over_50px512; all None before any frame."""
        v = np.asarray(self.px512, np.float64)
        if not v.size:
            return {"holes_mean_px512": None, "holes_p95_px512": None, "holes_max_px512": None,
                    "holes_frames_over_50px512": None}
        return {"holes_mean_px512": round(float(v.mean()), 2),
                "holes_p95_px512": round(float(np.percentile(v, 95)), 2),
                "holes_max_px512": round(float(v.max()), 2),
                "holes_frames_over_50px512": int((v >= 50).sum())}
