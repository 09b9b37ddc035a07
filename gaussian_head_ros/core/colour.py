"""Colour constants shared across core, in a module that imports nothing of the package, so that any module
(core.drive's brow strip as well as the reconstructor's lighting fit) can read them without an import cycle."""

import numpy as np

# ITU-R BT.601 luma weights (Rec. 601, as JPEG/JFIF's Y and OpenCV's RGB2GRAY): rgb [..., 3] @ LUMA -> luma [...],
# in rgb's units (0..1 floats or 0..255). float64; `LUMA.astype(np.float32)` for float32 images.
LUMA = np.array([0.299, 0.587, 0.114])
