"""Training data: folders of monocular talking-head videos (VFHQ / HDTF style), tracked once and cached.

Every frame is framed exactly as a photo is at inference (core/reconstruct/framing.py: the largest face,
its head frame, a square crop `crop_m` metres wide at the head's depth), so the model sees the same kind
of input in training and in use. `prepare_clip` runs once per clip and caches (`cache_dir/<clip key>/`):
  frames/00000.jpg ...   the crops at `cache_resolution`
  track.npz              K [T, 3, 3] crop intrinsics, viewmat [T, 4, 4] head -> camera, vertices [T, 478, 3]
                         (the face template: landmarks back-projected into the head frame), canonical
                         [T, 478, 3] (the pose-free landmarks the tracker's expression is made of),
                         blendshapes [T, B] + names (MediaPipe FaceLandmarker, only when a .task model is
                         given), masks [T, S, S] uint8 person masks (MediaPipe selfie segmentation of the
                         crop), frame_index [T] source frame numbers
`PairDataset` then draws (source frame -> target frame) pairs of the same clip: the avatar is built from
the source and driven to the target with expression = canonical_t - canonical_s (the source acts as the
neutral face) and the target's blendshapes as expression coefficients.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter
from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_VERSION = 1


@dataclass(frozen=True)
class DataConfig:
    """Where the clips are and how they are cached and sampled."""

    root: str = ""  # folder searched recursively for videos (and folders of numbered frames)
    cache_dir: str = ""  # default: <root>/.gaussian_head_cache
    cache_resolution: int = 256  # side of the cached crops (>= the largest training resolution)
    crop_m: float = 0.42  # crop side at the head's depth, metres (must equal the model's crop_m)
    crop_center_m: tuple[float, float] = (0.0, 0.03)  # crop centre in the head frame (x, y), metres
    max_frames: int = 0  # frames kept per clip, evenly spaced (0: all)
    max_clips: int = 0  # clips used (0: all), sorted by path
    landmarker_model: str = ""  # optional MediaPipe face_landmarker.task: ARKit blendshapes for the reenactment module
    min_pair_gap: int = 0  # smallest |t - s| in frames (0 allows the source itself as target)
    same_frame_prob: float = 0.1  # probability of target == source (plain reconstruction)


def find_clips(root: str | Path) -> list[Path]:
    """Videos and frame folders under root, sorted."""
    root = Path(root)
    if not root.exists():
        raise ValueError(f"training data folder {root} does not exist")
    if root.is_file():
        return [root]
    out = [p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and ".gaussian_head_cache" not in p.parts]
    for d in [root] + [p for p in root.rglob("*") if p.is_dir() and ".gaussian_head_cache" not in p.parts]:
        if sum(1 for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) >= 2:
            out.append(d)
    return sorted(set(out))


def _read_frames(path: Path, keep: set[int] | None = None):
    """Yield (index, rgb uint8) of a video or a folder of images."""
    import cv2

    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for i, f in enumerate(files):
            if keep is None or i in keep:
                bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if bgr is not None:
                    yield i, bgr[:, :, ::-1].copy()
        return
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}")
    i = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if keep is None or i in keep:
                yield i, bgr[:, :, ::-1].copy()
            i += 1
    finally:
        cap.release()


def _count_frames(path: Path) -> int:
    return sum(1 for _ in _read_frames(path)) if path.is_dir() else _video_length(path)


def _video_length(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n if n > 0 else sum(1 for _ in _read_frames(path))


def clip_key(path: Path, cfg: DataConfig) -> str:
    st = path.stat()
    ident = json.dumps([str(path.resolve()), st.st_size, int(st.st_mtime), cfg.cache_resolution, cfg.crop_m, list(cfg.crop_center_m),
                        cfg.max_frames, bool(cfg.landmarker_model), CACHE_VERSION])
    return f"{path.stem}-{hashlib.sha1(ident.encode()).hexdigest()[:10]}"


class _Blendshapes:
    """MediaPipe FaceLandmarker (a user-provided .task model) -> ARKit blendshape scores."""

    def __init__(self, model_path: str):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        if not Path(model_path).is_file():
            raise ValueError(f"landmarker_model {model_path} not found (MediaPipe face_landmarker.task)")
        self._mp = mp
        opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                            output_face_blendshapes=True, num_faces=1,
                                            running_mode=vision.RunningMode.IMAGE)
        self._lm = vision.FaceLandmarker.create_from_options(opts)
        self.names: list[str] = []

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        res = self._lm.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        if not res.face_blendshapes:
            return None
        cats = res.face_blendshapes[0]
        self.names = [c.category_name for c in cats]
        return np.array([c.score for c in cats], np.float32)

    def close(self):
        self._lm.close()


def prepare_clip(path: str | Path, cfg: DataConfig) -> Path:
    """Track, frame and segment one clip into the cache (skipped when already there). Returns its folder."""
    import cv2

    path = Path(path)
    root = Path(cfg.root) if cfg.root and Path(cfg.root).is_dir() else path.parent
    out = (Path(cfg.cache_dir) if cfg.cache_dir else root / ".gaussian_head_cache") / clip_key(path, cfg)
    if (out / "track.npz").exists():
        return out
    n = _count_frames(path)
    keep = None
    if cfg.max_frames and n > cfg.max_frames:
        keep = set(np.linspace(0, n - 1, cfg.max_frames).round().astype(int).tolist())
    framing = FramingConfig(size=cfg.cache_resolution, crop_m=cfg.crop_m, crop_center_m=tuple(cfg.crop_center_m))
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rec = {k: [] for k in ("K", "viewmat", "vertices", "canonical", "blendshapes", "masks", "frame_index")}
    bs = _Blendshapes(cfg.landmarker_model) if cfg.landmarker_model else None
    seg = PersonSegmenter()
    skipped = 0
    try:
        with FaceMesh(static_image_mode=False, max_faces=1) as fm:
            for i, rgb in _read_frames(path, keep):
                try:
                    fr = frame_photo(rgb, fm, framing)
                except ValueError as e:
                    log.debug("%s frame %d skipped: %s", path.name, i, e)
                    skipped += 1
                    continue
                scores = bs(rgb) if bs else np.zeros(0, np.float32)
                if scores is None:
                    skipped += 1
                    continue
                k = len(rec["K"])
                cv2.imwrite(str(frames_dir / f"{k:05d}.jpg"), fr.photo[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                mask = seg.probability(fr.photo)
                for key, val in (("K", fr.K), ("viewmat", fr.viewmat), ("vertices", fr.vertices),
                                 ("canonical", fr.fit.canonical), ("blendshapes", scores), ("frame_index", i),
                                 ("masks", (np.clip(mask, 0, 1) * 255).round().astype(np.uint8))):
                    rec[key].append(val)
    finally:
        seg.close()
        if bs:
            bs.close()
    if len(rec["K"]) < 2:
        raise ValueError(f"{path}: a usable face was found in {len(rec['K'])} frames; a clip needs at least 2")
    arrays = {k: np.stack(v) if k in ("masks", "frame_index") else np.stack(v).astype(np.float32)
              for k, v in rec.items()}
    np.savez_compressed(out / "track.npz", **arrays, blendshape_names=np.array(bs.names if bs else []),
                        meta=json.dumps({"source": str(path), "version": CACHE_VERSION, "config": asdict(cfg)}))
    log.info("cached %s: %d frames (%d skipped)", path.name, len(rec["K"]), skipped)
    return out


class Clip:
    """A cached clip (lazy frame loading)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        z = np.load(self.folder / "track.npz")
        self.K, self.viewmat, self.vertices = z["K"], z["viewmat"], z["vertices"]
        self.canonical, self.masks = z["canonical"], z["masks"]
        self.blendshapes, self.names = z["blendshapes"], [str(s) for s in z["blendshape_names"]]
        self.resolution = int(self.masks.shape[1])

    def __len__(self) -> int:
        return len(self.K)

    def frame(self, k: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb [size, size, 3] float32 in [0, 1], mask [size, size] float32, K [3, 3]) of cached frame k."""
        import cv2

        bgr = cv2.imread(str(self.folder / "frames" / f"{k:05d}.jpg"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cached frame {k} of {self.folder} is missing; delete the folder to rebuild it")
        res = self.resolution
        rgb, mask = bgr[:, :, ::-1], self.masks[k]
        if size != res:
            interp = cv2.INTER_AREA if size < res else cv2.INTER_LINEAR
            rgb, mask = cv2.resize(rgb, (size, size), interpolation=interp), cv2.resize(mask, (size, size), interpolation=interp)
        K = self.K[k].astype(np.float64).copy()
        K[:2] *= size / res  # continuous pixel coordinates scale with the image
        return rgb.astype(np.float32) / 255.0, mask.astype(np.float32) / 255.0, K.astype(np.float32)

    def coefficients(self, k: int, names) -> np.ndarray:
        """[E] blendshape scores of frame k for `names` (0 where the cache has none)."""
        look = {n: i for i, n in enumerate(self.names)}
        return np.array([self.blendshapes[k, look[n]] if n in look else 0.0 for n in names], np.float32)


class PairDataset(torch.utils.data.Dataset):
    """(source -> target) pairs drawn at random from the same clip; `length` pairs per epoch. Item i is a
    pure function of (seed, i), so any index (also beyond `length`) gives a reproducible fresh pair.

    Item tensors: src_image [3, S, S], src_K [3, 3], src_viewmat [4, 4], template [V, 3]; tgt_image
    [3, S, S], tgt_mask [S, S], tgt_K [3, 3], tgt_viewmat [4, 4], expression [V, 3], coeffs [E]."""

    def __init__(self, clips: list[Clip], resolution: int, coefficient_names, length: int = 10_000,
                 cfg: DataConfig | None = None, seed=0):
        if not clips:
            raise ValueError("no clips to train on")
        self.clips, self.res, self.names = clips, int(resolution), list(coefficient_names)
        self.length, self.cfg = int(length), cfg or DataConfig()
        self.seed = list(seed) if isinstance(seed, (list, tuple)) else [int(seed)]
        for c in clips:
            if c.resolution < self.res:
                log.warning("clip %s is cached at %d px, below the training resolution %d (upsampled)",
                            c.folder.name, c.resolution, self.res)

    def __len__(self) -> int:
        return self.length

    def pair(self, i: int) -> tuple[int, int, int]:
        rng = np.random.default_rng(self.seed + [int(i)])
        c = int(rng.integers(len(self.clips)))
        n = len(self.clips[c])
        s = int(rng.integers(n))
        if rng.random() < self.cfg.same_frame_prob and self.cfg.min_pair_gap == 0:
            return c, s, s
        cand = [t for t in range(n) if abs(t - s) >= max(self.cfg.min_pair_gap, 1)] or [s]
        return c, s, int(cand[rng.integers(len(cand))])

    def __getitem__(self, i: int) -> dict:
        c, s, t = self.pair(i)
        clip = self.clips[c]
        src, _, k_s = clip.frame(s, self.res)
        tgt, mask, k_t = clip.frame(t, self.res)
        f = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
        return {
            "src_image": f(src).permute(2, 0, 1), "src_K": f(k_s),
            "src_viewmat": f(clip.viewmat[s]), "template": f(clip.vertices[s]),
            "tgt_image": f(tgt).permute(2, 0, 1), "tgt_mask": f(mask), "tgt_K": f(k_t), "tgt_viewmat": f(clip.viewmat[t]),
            "expression": f(clip.canonical[t] - clip.canonical[s]),
            "coeffs": f(clip.coefficients(t, self.names)),
        }


def load_clips(cfg: DataConfig) -> list[Clip]:
    """Prepare (cache) and open every clip under cfg.root."""
    paths = find_clips(cfg.root)
    if cfg.max_clips:
        paths = paths[: cfg.max_clips]
    if not paths:
        raise ValueError(f"no videos or frame folders found under {cfg.root}")
    clips = []
    for p in paths:
        try:
            clips.append(Clip(prepare_clip(p, cfg)))
        except ValueError as e:
            log.warning("skipping %s: %s", p, e)
    if not clips:
        raise ValueError(f"none of the {len(paths)} clips under {cfg.root} could be used")
    return clips
