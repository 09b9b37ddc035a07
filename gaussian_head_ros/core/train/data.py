"""Training data: folders of monocular talking-head videos (VFHQ / HDTF style), tracked once into an on-disk
cache that every process reads memory-mapped.

Every frame is framed exactly as a photo is at inference (core/reconstruct/framing.py: the largest face,
its head frame, a square crop `crop_m` metres wide at the head's depth), so the model sees the same kind
of input in training and in use. `prepare_dataset` (the `gaussian-head prepare` command) tracks each clip
once, resumably, into `cache_dir/<clip key>/` (written to `<clip key>.partial/` and renamed when complete):
  frames/00000.jpg ...   the crops at `cache_resolution`
  K.npy [T, 3, 3]        crop intrinsics;  viewmat.npy [T, 4, 4] head -> camera
  vertices.npy [T, 478, 3]   the face template (landmarks back-projected into the head frame)
  canonical.npy [T, 478, 3]  the pose-free landmarks the tracker's expression is made of
  blendshapes.npy [T, B]     MediaPipe FaceLandmarker scores (B = 0 without a .task model)
  masks.npy [T, S, S] uint8  person masks (MediaPipe selfie segmentation of the crop)
  frame_index.npy [T]        source frame numbers;  meta.json: source, version, names, frames
and lists the complete clips in the dataset index `cache_dir/index-<hash>.json` (`DatasetIndex`; the hash
covers the root and the caching settings). Training opens clips lazily through the index, memory-mapped,
a bounded number at a time; each rank draws from its own shard of the training clips, and held-out clips
(`val_clips`) form the validation split.

`PairDataset` draws (source frame -> target frame) pairs of the same clip: the avatar is built from the
source and driven to the target with expression = canonical_t - canonical_s and blendshape coefficients
deform.basis_coefficients(b_t, rest=b_s) = b_t - b_s (both relative to the source, the face the avatar
rests in; the driver applies the same rule with the exported avatar resting at the coefficients' zero:
core/model/reenactment.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gaussian_head_ros.core.deform import basis_coefficients
from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter
from gaussian_head_ros.core.native_log import quiet_notices
from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_VERSION = 3  # 2: per-array .npy files (memory-mapped) and a dataset index; 3: viewmat sees the head along its line of sight


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
    val_clips: int = 1  # clips held out for validation (chosen by key hash); with one clip: its last val_fraction
    val_fraction: float = 0.2  # share of frames held out when there are too few clips to hold one out
    val_pairs: int = 16  # fixed validation pairs (source -> target of the held-out clips)
    open_clips: int = 64  # clips kept open (memory-mapped) per process; others are reopened on demand


def _no_root(root) -> str:
    return f"training data folder {root} does not exist"


def _no_landmarker(path) -> str:
    return f"landmarker_model {path} not found (MediaPipe face_landmarker.task)"


def data_file_problems(cfg: DataConfig) -> list[str]:
    """Why the files `cfg` names cannot be read, one line each, checked before any clip is tracked: `root` missing
    (unless its dataset index is prepared: training reads only the index and the caches), `landmarker_model` given
    and missing. A missing landmarker_model was found clip by clip ('skipping <clip>: landmarker_model ... not found'
    for each, then 'none of the N clips could be used'; user60)."""
    problems = []
    if not Path(cfg.root).exists() and not DatasetIndex.path_for(cfg).exists():
        problems.append(_no_root(cfg.root))
    if cfg.landmarker_model and not Path(cfg.landmarker_model).is_file():
        problems.append(_no_landmarker(cfg.landmarker_model))
    return problems


def find_clips(root: str | Path) -> list[Path]:
    """Videos and frame folders under root, sorted."""
    root = Path(root)
    if not root.exists():
        raise ValueError(_no_root(root))
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
    """Cache folder name of a clip: its (resolved) name and a hash of its identity and the caching settings;
    symlinks to one file share one cache."""
    path = path.resolve()
    st = path.stat()
    ident = json.dumps([str(path), st.st_size, int(st.st_mtime), cfg.cache_resolution, cfg.crop_m, list(cfg.crop_center_m),
                        cfg.max_frames, bool(cfg.landmarker_model), CACHE_VERSION])
    return f"{path.stem}-{hashlib.sha1(ident.encode()).hexdigest()[:10]}"


class _Blendshapes:
    """MediaPipe FaceLandmarker (a user-provided .task model) -> ARKit blendshape scores."""

    @quiet_notices
    def __init__(self, model_path: str):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        if not Path(model_path).is_file():
            raise ValueError(_no_landmarker(model_path))
        self._mp = mp
        opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                            output_face_blendshapes=True, num_faces=1,
                                            running_mode=vision.RunningMode.IMAGE)
        self._lm = vision.FaceLandmarker.create_from_options(opts)
        self.names: list[str] = []

    @quiet_notices
    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        res = self._lm.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        if not res.face_blendshapes:
            return None
        cats = res.face_blendshapes[0]
        self.names = [c.category_name for c in cats]
        return np.array([c.score for c in cats], np.float32)

    def close(self):
        self._lm.close()


ARRAYS = ("K", "viewmat", "vertices", "canonical", "blendshapes", "masks", "frame_index")


def cache_root(cfg: DataConfig) -> Path:
    """The folder holding the clip caches and the dataset index."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    root = Path(cfg.root)
    return (root if root.is_dir() else root.parent) / ".gaussian_head_cache"


def prepare_clip(path: str | Path, cfg: DataConfig) -> Path:
    """Track, frame and segment one clip into the cache (skipped when already complete). Returns its folder.
    Written into `<key>.partial/` and renamed when complete, so an interrupted run leaves no half clip.
    Raises ValueError when fewer than 2 frames have a usable face."""
    import cv2

    path = Path(path)
    out = cache_root(cfg) / clip_key(path, cfg)
    if (out / "meta.json").exists():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    n = _count_frames(path)
    keep = None
    if cfg.max_frames and n > cfg.max_frames:
        keep = set(np.linspace(0, n - 1, cfg.max_frames).round().astype(int).tolist())
    framing = FramingConfig(size=cfg.cache_resolution, crop_m=cfg.crop_m, crop_center_m=tuple(cfg.crop_center_m))
    (tmp / "frames").mkdir(parents=True, exist_ok=True)
    rec = {k: [] for k in ARRAYS}
    bs = _Blendshapes(cfg.landmarker_model) if cfg.landmarker_model else None
    seg = PersonSegmenter()
    skipped = 0
    barred, upright = [], []  # (frame, bars) of the frames with letterbox bars; |roll| of those turned upright
    try:
        with FaceMesh(static_image_mode=False, max_faces=1) as fm:
            for i, rgb in _read_frames(path, keep):
                try:
                    fr = frame_photo(rgb, fm, framing, log_level=logging.DEBUG)  # said once for the clip, below
                except ValueError as e:
                    log.debug("%s frame %d skipped: %s", path.name, i, e)
                    skipped += 1
                    continue
                scores = bs(rgb) if bs else np.zeros(0, np.float32)
                if scores is None:
                    skipped += 1
                    continue
                if any(fr.bars):
                    barred.append((i, fr.bars))
                if fr.upright_deg:
                    upright.append(abs(fr.upright_deg))
                k = len(rec["K"])
                cv2.imwrite(str(tmp / "frames" / f"{k:05d}.jpg"), fr.photo[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
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
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{path}: a usable face was found in {len(rec['K'])} frames; a clip needs at least 2")
    for k, v in rec.items():
        np.save(tmp / f"{k}.npy", np.stack(v) if k in ("masks", "frame_index") else np.stack(v).astype(np.float32))
    (tmp / "meta.json").write_text(json.dumps({
        "source": str(path), "version": CACHE_VERSION, "frames": len(rec["K"]), "resolution": cfg.cache_resolution,
        "blendshape_names": bs.names if bs else [], "skipped": skipped, "config": asdict(cfg)}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("cached %s: %d frames (%d skipped)%s", path.name, len(rec["K"]), skipped,
             _framing_summary(barred, upright, framing.roll_upright_deg))
    return out


def _framing_summary(barred: list, upright: list, roll_upright_deg: float) -> str:
    """'' or '; letterbox bars ... in N frames; the head rolled ... in M frames': what frame_photo did to a clip's
    frames, said once for the clip (it logged a line a frame before). barred: (frame index, (top, bottom, left,
    right) lines) of the frames with bars; upright: |roll| degrees of the frames turned upright."""
    said = ""
    if barred:
        i, (top, bottom, left, right) = barred[0]
        said += (f"; letterbox bars outside the picture in {len(barred)} frames (frame {i}: top {top}, bottom "
                 f"{bottom}, left {left}, right {right} px), left out of the crops")
    if upright:
        said += (f"; the head rolled more than {roll_upright_deg:g} deg in {len(upright)} frames (up to "
                 f"{max(upright):.0f} deg), turned upright")
    return said


class Clip:
    """A cached clip: its arrays memory-mapped (opened on first use), frames read from JPEG on demand."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta_file = self.folder / "meta.json"
        if not meta_file.exists():
            raise ValueError(f"{self.folder} is not a complete clip cache (run 'gaussian-head prepare' again)")
        self.meta = json.loads(meta_file.read_text())
        self.names = [str(s) for s in self.meta["blendshape_names"]]
        self.resolution = int(self.meta["resolution"])

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in ARRAYS:
            raise AttributeError(name)
        arr = np.load(self.folder / f"{name}.npy", mmap_mode="r")  # read-only, pages loaded on access
        setattr(self, name, arr)
        return arr

    def __len__(self) -> int:
        return int(self.meta["frames"])

    def frame(self, k: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb [size, size, 3] float32 in [0, 1], mask [size, size] float32, K [3, 3]) of cached frame k."""
        import cv2

        bgr = cv2.imread(str(self.folder / "frames" / f"{k:05d}.jpg"), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cached frame {k} of {self.folder} is missing; delete the folder to rebuild it")
        res = self.resolution
        rgb, mask = bgr[:, :, ::-1], np.asarray(self.masks[k])
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


@dataclass(frozen=True)
class ClipEntry:
    """One clip of the index: its cache folder (relative to the cache root) and the frames [lo, hi) used."""

    folder: str
    frames: int
    source: str = ""
    lo: int = 0
    hi: int = -1  # -1: frames

    @property
    def stop(self) -> int:
        """The end (exclusive) of the frames used: `hi`, or all `frames` when hi is -1."""
        return self.frames if self.hi < 0 else self.hi


def _split_key(entry: ClipEntry) -> str:
    """Validation order: a hash of the clip's file name (stable across folders, machines and added clips)."""
    return hashlib.sha1(Path(entry.source).name.encode()).hexdigest()


class DatasetIndex:
    """The list of cached clips of one dataset (root + caching settings), stored as JSON next to the caches.

    `split()` gives (train, validation) entries: `val_clips` clips chosen by a hash of their file name
    (stable when clips are added), or, with fewer than 2 clips, the last `val_fraction` of each clip's
    frames. `shard()` gives one rank's part of a list."""

    def __init__(self, root: Path, entries: list[ClipEntry], failed: list[dict] | None = None):
        self.root, self.entries, self.failed = Path(root), list(entries), list(failed or [])

    @staticmethod
    def path_for(cfg: DataConfig) -> Path:
        """Where the index of `cfg`'s dataset lives: a file under the cache root named by a hash of the root,
        the caching settings and CACHE_VERSION (another setting, another index)."""
        ident = json.dumps([str(Path(cfg.root).resolve()), cfg.cache_resolution, cfg.crop_m, list(cfg.crop_center_m),
                            cfg.max_frames, cfg.max_clips, bool(cfg.landmarker_model), CACHE_VERSION])
        return cache_root(cfg) / f"index-{hashlib.sha1(ident.encode()).hexdigest()[:10]}.json"

    @classmethod
    def load(cls, cfg: DataConfig) -> "DatasetIndex":
        """The index of cfg's dataset; ValueError when `gaussian-head prepare` has not written it."""
        path = cls.path_for(cfg)
        if not path.exists():
            raise ValueError(f"no dataset index {path} for {cfg.root}: run 'gaussian-head prepare CONFIG' first")
        d = json.loads(path.read_text())
        if d.get("version") != CACHE_VERSION:
            raise ValueError(f"{path} has cache version {d.get('version')}, not {CACHE_VERSION}: run 'gaussian-head prepare' again")
        return cls(path.parent, [ClipEntry(**e) for e in d["clips"]], d.get("failed"))

    def save(self, cfg: DataConfig) -> Path:
        """Write the index to `path_for(cfg)` atomically (a temporary file renamed) and return that path."""
        path = self.path_for(cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "root": str(cfg.root), "config": asdict(cfg),
                                   "clips": [asdict(e) for e in self.entries], "failed": self.failed}))
        tmp.replace(path)
        return path

    def __len__(self) -> int:
        return len(self.entries)

    def split(self, cfg: DataConfig) -> tuple[list[ClipEntry], list[ClipEntry]]:
        """(train entries, validation entries); the validation split is never empty."""
        if len(self.entries) >= 2 and cfg.val_clips > 0:
            n_val = min(cfg.val_clips, len(self.entries) - 1)
            held = set(sorted(range(len(self.entries)), key=lambda i: _split_key(self.entries[i]))[:n_val])
            return ([e for i, e in enumerate(self.entries) if i not in held],
                    [e for i, e in enumerate(self.entries) if i in held])
        train, val = [], []
        for e in self.entries:  # too few clips: hold out the end of each (>= 2 frames on each side)
            cut = min(max(2, int(round(e.frames * (1 - cfg.val_fraction)))), e.frames - 2)
            if cut < 2:
                raise ValueError(f"clip {e.source} has {e.frames} frames: too few to hold out validation frames")
            train.append(ClipEntry(e.folder, e.frames, e.source, 0, cut))
            val.append(ClipEntry(e.folder, e.frames, e.source, cut, e.frames))
        return train, val

    @staticmethod
    def shard(entries: list[ClipEntry], rank: int, world: int) -> list[ClipEntry]:
        """Rank `rank`'s clips (every world-th); all of them when there are fewer clips than ranks."""
        if world <= 1 or len(entries) < world:
            return list(entries)
        return entries[rank::world]

    def open(self, entry: ClipEntry) -> Clip:
        """The cached Clip of an entry (its folder under the cache root)."""
        return Clip(self.root / entry.folder)


def prepare_dataset(cfg: DataConfig, shard: tuple[int, int] = (0, 1)) -> DatasetIndex:
    """Cache every clip under cfg.root (or shard i of n of them) and write the dataset index of the clips
    complete so far. Resumable: complete clips are skipped, a clip interrupted midway is redone. ValueError for the
    data_file_problems of `cfg`, before any clip is tracked."""
    problems = data_file_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))
    paths = find_clips(cfg.root)
    if cfg.max_clips:
        paths = paths[: cfg.max_clips]
    if not paths:
        raise ValueError(f"no videos or frame folders found under {cfg.root}")
    i, n = shard
    entries, failed, todo = [], [], 0
    for k, p in enumerate(paths):
        folder = cache_root(cfg) / clip_key(p, cfg)
        if k % n == i and not (folder / "meta.json").exists():
            todo += 1
            try:
                prepare_clip(p, cfg)
            except ValueError as e:
                log.warning("skipping %s: %s", p, e)
                failed.append({"source": str(p), "reason": str(e)})
                continue
        if (folder / "meta.json").exists():
            frames = int(json.loads((folder / "meta.json").read_text())["frames"])
            entries.append(ClipEntry(folder.name, frames, str(p)))
    index = DatasetIndex(cache_root(cfg), entries, failed)
    if not entries:
        raise ValueError(f"none of the {len(paths)} clips under {cfg.root} could be used")
    path = index.save(cfg)
    log.info("dataset index %s: %d clips (%d prepared now, %d failed)", path, len(entries), todo, len(failed))
    return index


def load_clips(cfg: DataConfig) -> list[Clip]:
    """Prepare (cache) and open every clip under cfg.root (small datasets, scripts and tests)."""
    index = prepare_dataset(cfg)
    return [index.open(e) for e in index.entries]


class PairDataset(torch.utils.data.Dataset):
    """(source -> target) pairs drawn at random from the same clip; `length` pairs per epoch. Item i is a
    pure function of (seed, i), so any index (also beyond `length`) gives a reproducible fresh pair.
    Clips are opened on demand, at most `cfg.open_clips` at a time.

    Item tensors: src_image [3, S, S], src_mask [S, S], src_K [3, 3], src_viewmat [4, 4], template [V, 3]; tgt_image
    [3, S, S], tgt_mask [S, S], tgt_K [3, 3], tgt_viewmat [4, 4], expression [V, 3] (canonical_t -
    canonical_s), coeffs [E] (deform.basis_coefficients: blendshapes_t - blendshapes_s, the source being the
    face the avatar rests in), src_coeffs [E] (blendshapes_s: what the model's rest coefficients learn), gaze
    [2, 2] (the target's, `target_gaze`)."""

    def __init__(self, clips, resolution: int, coefficient_names, length: int = 10_000,
                 cfg: DataConfig | None = None, seed=0, root: str | Path | None = None):
        """clips: ClipEntry list (with `root`, the cache root) or opened Clip objects."""
        if not clips:
            raise ValueError("no clips to train on")
        self.res, self.names = int(resolution), list(coefficient_names)
        self.length, self.cfg = int(length), cfg or DataConfig()
        self.seed = list(seed) if isinstance(seed, (list, tuple)) else [int(seed)]
        if isinstance(clips[0], Clip):
            self._clips = list(clips)
            self.ranges = [(0, len(c)) for c in clips]
        else:
            self.root, self.entries = Path(root), list(clips)
            self.ranges = [(e.lo, e.stop) for e in self.entries]
            self._open = functools.lru_cache(maxsize=max(1, self.cfg.open_clips))(self._open_entry)

    def _open_entry(self, c: int) -> Clip:
        clip = Clip(self.root / self.entries[c].folder)
        if clip.resolution < self.res:
            log.warning("clip %s is cached at %d px, below the training resolution %d (upsampled)",
                        clip.folder.name, clip.resolution, self.res)
        return clip

    def clip(self, c: int) -> Clip:
        """Clip `c` (an index into the clips): given opened, or opened on demand and kept among the
        `cfg.open_clips` most recently used."""
        return self._clips[c] if hasattr(self, "_clips") else self._open(c)

    def __len__(self) -> int:
        return self.length

    def pair(self, i: int) -> tuple[int, int, int]:
        """(clip, source frame, target frame) of item i."""
        rng = np.random.default_rng(self.seed + [int(i)])
        c = int(rng.integers(len(self.ranges)))
        lo, hi = self.ranges[c]
        s = int(rng.integers(lo, hi))
        if rng.random() < self.cfg.same_frame_prob and self.cfg.min_pair_gap == 0:
            return c, s, s
        cand = [t for t in range(lo, hi) if abs(t - s) >= max(self.cfg.min_pair_gap, 1)] or [s]
        return c, s, int(cand[rng.integers(len(cand))])

    def __getitem__(self, i: int) -> dict:
        c, s, t = self.pair(i)
        clip = self.clip(c)
        src, src_mask, k_s = clip.frame(s, self.res)
        tgt, mask, k_t = clip.frame(t, self.res)
        f = lambda a: torch.as_tensor(np.array(a, np.float32))  # noqa: E731  (a copy: never a view of the cache)
        return {
            "src_image": f(src).permute(2, 0, 1), "src_mask": f(src_mask), "src_K": f(k_s),
            "src_viewmat": f(clip.viewmat[s]), "template": f(clip.vertices[s]),
            "tgt_image": f(tgt).permute(2, 0, 1), "tgt_mask": f(mask), "tgt_K": f(k_t), "tgt_viewmat": f(clip.viewmat[t]),
            "expression": f(clip.canonical[t] - clip.canonical[s]),
            "coeffs": f(basis_coefficients(self.names, self.names, clip.coefficients(t, self.names),
                                           rest=clip.coefficients(s, self.names))),
            "src_coeffs": f(clip.coefficients(s, self.names)),
            "gaze": f(target_gaze(clip.canonical[t])),
        }


def target_gaze(canonical: np.ndarray) -> np.ndarray:
    """[2, 2] (yaw, pitch) rad per eye of a frame's canonical (head-frame) landmarks [L, 3], as the tracker
    measures FaceControl.gaze (core/eyes.py); zeros without the iris landmarks."""
    from gaussian_head_ros.core import eyes

    try:
        return eyes.gaze_from_landmarks(canonical)
    except ValueError:
        return np.zeros((2, 2))
