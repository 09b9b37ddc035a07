#!/usr/bin/env python3
"""The independent reader's noise floor (core/reader.py NOISE_STD): MediaPipe FaceLandmarker, in video mode
as the living-face table runs it, on a still face that gets fresh pixel noise each frame (a camera's sensor
noise on a face that does not move). Prints, per face and per blendshape group, the std of the reader's
series, and the median over the faces (what NOISE_STD holds).

    python scripts/reader_noise.py [--data ../shared/data] [--frames 30] [--noise 2.0]

Faces: the first frame of every clip in <data>/driving and the portraits business_person, obama_official,
lp_s9_monalisa. Asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PORTRAITS = ("business_person.png", "obama_official.jpg", "lp_s9_monalisa.jpg")


def main() -> None:
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reader import ANGLES, GROUPS, NOISE_STD, FaceReader, ReaderSeries
    from gaussian_head_ros.core.video import read_frames

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--noise", type=float, default=2.0, help="pixel noise std, grey levels")
    a = ap.parse_args()
    data = Path(a.data)
    faces = {c.stem: read_frames(str(c), max_frames=1)[0].rgb for c in sorted((data / "driving").glob("*.mp4"))}
    faces.update({p: read_image(str(data / "portraits" / p)) for p in PORTRAITS if (data / "portraits" / p).exists()})
    rng = np.random.default_rng(0)
    stds = []
    for name, rgb in faces.items():
        series = ReaderSeries()
        with FaceReader(str(data / "models" / "face_landmarker.task"), video=True) as reader:
            for i in range(a.frames):
                noisy = np.clip(rgb.astype(np.float32) + rng.normal(0, a.noise, rgb.shape), 0, 255).astype(np.uint8)
                series.add(reader.read(noisy, i * 40_000_000))
        stds.append([float(np.nanstd(series.groups[g])) for g in GROUPS]
                    + [float(np.nanstd(series.angles[k])) for k in ANGLES])
        print(f"{name[:28]:28s}", " ".join(f"{g} {s:.4f}" for g, s in zip(GROUPS + ANGLES, stds[-1])))
    med = np.median(np.asarray(stds), 0)
    print(f"{'median':28s}", " ".join(f"{g} {s:.4f}" for g, s in zip(GROUPS + ANGLES, med)), "(angles in degrees)")
    print(f"{'NOISE_STD (core/reader.py)':28s}", " ".join(f"{g} {NOISE_STD[g]:.4f}" for g in GROUPS))


if __name__ == "__main__":
    main()
