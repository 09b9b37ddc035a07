"""Colour constants shared across core, in a module that imports nothing of the package, so that any module
(core.drive's brow strip as well as the reconstructor's lighting fit) can read them without an import cycle."""

import numpy as np

# ITU-R BT.601 luma weights (Rec. 601, as JPEG/JFIF's Y and OpenCV's RGB2GRAY): rgb [..., 3] @ LUMA -> luma [...],
# in rgb's units (0..1 floats or 0..255). float64; `LUMA.astype(np.float32)` for float32 images.
LUMA = np.array([0.299, 0.587, 0.114])


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation of rgb [..., 3] (any units): (max - min) / max per pixel [...], 0 for black."""
    rgb = np.asarray(rgb)
    hi = rgb.max(-1)
    return (hi - rgb.min(-1)) / np.maximum(hi, 1e-6)


def skin_residual(rgb: np.ndarray, skin, dark: float) -> np.ndarray:
    """How far rgb [..., 3] (0..1) is from the skin colour [3] in light or shade: the squared rgb residual [...]
    to skin x g, g the least-squares gain clipped to [dark, 1] (a shaded neck is the skin at 0.5-1 x its
    brightness; the white collar, the dark suit and hair of another hue are far from it). Thresholds:
    reconstruct.mesh_fit.MeshFitConfig.neck_skin_residual."""
    skin = np.asarray(skin, np.float64)
    gain = np.clip(rgb @ skin / max(float(skin @ skin), 1e-6), dark, 1.0)
    return np.sum((rgb - gain[..., None] * skin) ** 2, axis=-1)


def eight_bit_guess(rgb) -> list[float] | None:
    """rgb [3] given where a colour in 0..1 is asked for (a display's background), read as 8-bit values: that colour
    in 0..1 (rounded to 3 decimals) when all three are whole numbers in 0..255 and one is above 1 (a UI's colour, as
    tools write it: [26, 51, 77]); else None (a colour in 0..1, or values that are no 8-bit colour)."""
    values = [float(v) for v in rgb]
    if len(values) != 3 or not all(v.is_integer() and 0 <= v <= 255 for v in values) or max(values) <= 1:
        return None
    return [round(v / 255, 3) for v in values]
