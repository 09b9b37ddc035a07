"""Two-stage training of the RAR reconstructor: pairs -> reconstruct -> drive -> differentiable render -> losses.

Stage 1 (generalisation): lower resolution, frozen backbone. Stage 2 (high-frequency texture): higher
resolution, the last backbone blocks unfrozen with a smaller learning rate. Any number of stages can be
configured. One process per GPU under torchrun (DistributedDataParallel; gloo on CPU), or a single process.
Checkpoints carry their config and resume; TensorBoard logs go to <out_dir>/tensorboard.
Config files are YAML or JSON (docs/TRAINING.md, config/train_*.yaml).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from gaussian_head_ros.core.files import file_kind, shown
from gaussian_head_ros.core.memory import peak_rss_mb
from gaussian_head_ros.core.model.backbone import check_pretrained, save_backbone
from gaussian_head_ros.core.model.rar import (RARConfig, RARModel, build_model, model_from_state, preset_config,
                                              read_checkpoint, referenced_backbone, save_checkpoint)
from gaussian_head_ros.core.render import rasterize
from gaussian_head_ros.core.train.data import (Clip, DataConfig, DatasetIndex, PairDataset, data_file_problems,
                                               prepare_dataset)
from gaussian_head_ros.core.train.losses import ImageLoss, LossConfig, ssim_map, unseen_prior_loss

log = logging.getLogger(__name__)

VALIDATION_SEED = 20_251_129  # the validation pairs do not depend on the run's seed


@dataclass(frozen=True)
class StageConfig:
    """One training stage."""

    name: str = "stage1"
    steps: int = 20_000  # optimiser steps (0: the stage is skipped)
    resolution: int = 256  # side of source crops, targets and renders (pixels)
    batch_size: int = 4  # pairs per process and step
    lr: float = 3e-4  # generator + reenactment module
    backbone_lr: float = 0.0  # learning rate of the unfrozen backbone blocks
    trainable_blocks: int = 0  # backbone blocks trained, counted from the top (0: frozen, -1: all)
    warmup_steps: int = 200  # linear warm-up, then cosine decay to 10%
    grad_clip: float = 1.0  # max gradient norm (0: off)


@dataclass(frozen=True)
class TrainConfig:
    """Everything `gaussian-head train CONFIG` reads."""

    preset: str = "tiny"  # RAR preset (core/model/rar.py PRESETS): backbone size and avatar size
    model: dict = field(default_factory=dict)  # overrides of RARConfig fields, e.g. {input_size: 448}
    backbone_weights: str = ""  # local WebSSL directory (config.json + model.safetensors); "" = random init
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stages: tuple[StageConfig, ...] = (StageConfig(),)
    out_dir: str = "runs/rar"  # checkpoints/, tensorboard/, config.json
    seed: int = 0
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    render_backend: str = "auto"  # auto: gsplat on CUDA, torch on CPU
    background: float = 1.0  # grey level the target is composited on (outside the person mask)
    pairs_per_epoch: int = 10_000
    num_workers: int = 2  # DataLoader workers per process
    log_every: int = 20
    image_every: int = 500  # TensorBoard render/target images
    checkpoint_every: int = 1000
    val_every: int = 500  # validation (held-out pairs: loss terms, PSNR, SSIM) every N steps and at each stage end
    # reference: the frozen backbone is stored as its file + hash (a random one is written once to
    # checkpoints/backbone-<hash>/); full
    checkpoint_backbone: str = "reference"
    amp: bool = False  # the backbone in bfloat16 autocast on CUDA (the rest stays float32)


def _build(cls, values: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {where} keys: {', '.join(sorted(unknown))} (allowed: {', '.join(known)})")
    kw = {}
    for k, v in values.items():
        if k == "data":
            v = _build(DataConfig, v or {}, "data")
        elif k == "loss":
            v = _build(LossConfig, v or {}, "loss")
        elif k == "stages":
            if not v:
                raise ValueError("stages: at least one stage is needed")
            v = tuple(_build(StageConfig, s, f"stages[{i}]") for i, s in enumerate(v))
        elif k == "crop_center_m":
            v = tuple(v)
        else:
            v = _typed(v, known[k].default, f"{where}.{k}" if where != "top-level" else k)
        kw[k] = v
    return cls(**kw)


def _typed(value, default, name: str):
    """`value` as the kind of its field's `default` (bool, int or float; other fields as given). A number YAML reads as
    a string (PyYAML takes `3e-4` and `1e4` for strings: `--set stages.0.lr=3e-4`) is converted; an integer field
    takes a whole number only. Raises ValueError naming the field otherwise: `--set stages.0.steps=abc` passed
    `train --dry-run` ('check the config') and failed in the first stage (cli37, s37)."""
    kind = type(default)
    if kind not in (bool, int, float):
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, got {value!r}")
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number):
        if kind is float:
            return float(number)
        if float(number).is_integer():
            return int(number)
    raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")


def config_from_dict(d: dict) -> TrainConfig:
    """A training YAML's parsed dict -> TrainConfig (its data, loss and stages sections as their dataclasses).
    ValueError for a key no config has (naming the allowed ones), no stages, a checkpoint_backbone other than
    'reference' or 'full', or an unknown preset."""
    cfg = _build(TrainConfig, d, "top-level")
    if cfg.checkpoint_backbone not in ("reference", "full"):
        raise ValueError(f"checkpoint_backbone must be 'reference' or 'full', got {cfg.checkpoint_backbone!r}")
    preset_config(cfg.preset)  # raises on an unknown preset
    return cfg


def _set_dotted(d: dict, key: str, value) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d[int(p)] if isinstance(d, list) else d.setdefault(p, {})
    if isinstance(d, list):
        d[int(parts[-1])] = value
    else:
        d[parts[-1]] = value


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """A TrainConfig from a YAML/JSON file plus `key.sub=value` overrides (values parsed as YAML)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"training config {path} not found")
    try:
        given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:  # said as "'utf-8' codec can't decode byte 0xbc in position 1533" (cli37, s37)
        what = file_kind(path)
        raise ValueError(f"training config {shown(path)} is {what or 'not a text file'}: give a YAML or JSON config "
                         "(config/train_*.yaml)") from None
    except yaml.YAMLError as e:  # its message spans lines: said as one, with where
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"training config {shown(path)} is not valid YAML ({at}"
                         f"{getattr(e, 'problem', None) or str(e).splitlines()[0]})") from None
    if not isinstance(given, dict):
        raise ValueError(f"{path}: a training config is a mapping of keys to values")
    d = json.loads(json.dumps(asdict(TrainConfig())))  # the defaults, so overrides can reach any key
    for k, v in given.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and isinstance(d.get(k), dict) and k != "model" else v
    for o in overrides:
        if "=" not in o:
            raise ValueError(f"override {o!r} is not key=value")
        k, v = o.split("=", 1)
        _set_dotted(d, k.strip(), yaml.safe_load(v))
    return config_from_dict(d)


# ----------------------------------------------------------------------------------------------------
class _Dist:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) or a single process."""

    def __init__(self, device: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        self.device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if use_cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def mean(self, x: float) -> float:
        if self.world == 1:
            return x
        t = torch.tensor([x], device=self.device)
        torch.distributed.all_reduce(t)
        return float(t) / self.world

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _lr_factor(step: int, stage: StageConfig) -> float:
    if step < stage.warmup_steps:
        return (step + 1) / stage.warmup_steps
    t = (step - stage.warmup_steps) / max(1, stage.steps - stage.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def view_rgb(out: dict, posed: dict, batch: dict) -> torch.Tensor:
    """[B, N, 3] the colours the target cameras see, as the exported avatar's SH (`rar.view_sh`) shows them through
    `Driver.drive(viewmat=...)`: out["rgb"] + (out["rgb_source"] - out["rgb"]) x `legendre`(t, VIEW_LOBE), t the cosine
    between the target's and the source's directions to the Gaussian. The direction camera -> Gaussian in the head's
    rest frame: the target's (posed means + the target camera's translation, turned back by the target's head rotation;
    the head surface follows the head) and the source's (rest means - the source camera's centre)."""
    rgb = out["rgb"]
    if "rgb_source" not in out:
        return rgb
    rot, t = batch["tgt_viewmat"][:, :3, :3], batch["tgt_viewmat"][:, :3, 3]
    d = torch.nn.functional.normalize(posed["means"] + t[:, None], dim=-1) @ rot  # [B, N, 3] R^T d per row
    r, ts = batch["src_viewmat"][:, :3, :3], batch["src_viewmat"][:, :3, 3]
    e = torch.nn.functional.normalize(out["means"] + (r.transpose(1, 2) @ ts[..., None])[..., 0][:, None], dim=-1)
    from gaussian_head_ros.core.avatar import legendre
    from gaussian_head_ros.core.model.generator import VIEW_LOBE

    return (rgb + (out["rgb_source"] - rgb) * legendre((d * e).sum(-1, keepdim=True), VIEW_LOBE)).clamp(0, 1)


def render_batch(posed: dict, out: dict, batch: dict, background: float, backend: str):
    """Rasterize every posed avatar of a batch with its target camera (colours `view_rgb`): images [B, 3, S, S],
    alphas [B, S, S]."""
    s = batch["tgt_image"].shape[-1]
    rgb = view_rgb(out, posed, batch)
    images, alphas = [], []
    for b in range(posed["means"].shape[0]):
        view = torch.eye(4, device=posed["means"].device)
        view[:3, 3] = batch["tgt_viewmat"][b, :3, 3]  # posed Gaussians are already turned (drive()'s frame)
        r = rasterize(posed["means"][b], posed["quats"][b], posed["scales"][b],
                      torch.sigmoid(out["logit_opacities"][b]), rgb[b], view, batch["tgt_K"][b], s, s,
                      background=(background,) * 3, backend=backend)
        images.append(r.image.permute(2, 0, 1))
        alphas.append(r.alpha)
    return torch.stack(images), torch.stack(alphas)


def unseen_weights(model, out: dict, posed: dict, batch: dict, width: float = 0.1) -> torch.Tensor:
    """[B, N] in [0, 1], detached: which head-surface / torso Gaussians the target view does not show: 1 where
    the Gaussian faces away from the target camera (posed normal R n . unit direction to it below -width) or
    lies behind the face (the source's occlusion), 0 where it faces the target camera by more than width,
    a linear ramp between; times the target's person mask where the Gaussian projects (onto the background:
    0, so the mask loss may carve the head surface to the person's silhouette); 0 on the other parts."""
    from gaussian_head_ros.core.avatar import PART_STATIC, PART_TORSO

    g = (model.module if hasattr(model, "module") else model).generator
    with torch.no_grad():
        rot = batch["tgt_viewmat"][:, :3, :3]
        cam = -batch["tgt_viewmat"][:, None, :3, 3]  # [B, 1, 3] camera centre in the posed frame (view = [I | t])
        n = out["normals"] @ rot.transpose(1, 2)
        facing = (n * torch.nn.functional.normalize(cam - posed["means"], dim=-1)).sum(-1)
        away = ((width - facing) / (2 * width)).clamp(0, 1)
        unseen = torch.maximum(away, out["departure"]["hidden"])
        # where the target's person mask is not (the Gaussian projects onto the background): free, so the mask
        # loss may carve the head surface to the person's silhouette, front and back alike
        K = batch["tgt_K"]
        pc = posed["means"] + batch["tgt_viewmat"][:, None, :3, 3]
        z = pc[..., 2].clamp(min=1e-3)
        uv = torch.stack([K[:, None, 0, 0] * pc[..., 0] / z + K[:, None, 0, 2],
                          K[:, None, 1, 1] * pc[..., 1] / z + K[:, None, 1, 2]], -1)
        s = batch["tgt_mask"].shape[-1]
        grid = (2 * uv / s - 1)[:, :, None]  # [B, N, 1, 2]
        person = torch.nn.functional.grid_sample(batch["tgt_mask"][:, None], grid, align_corners=False)[:, 0, :, 0]
        unseen = unseen * person
        return unseen * ((g.part == PART_STATIC) | (g.part == PART_TORSO))[None].to(unseen.dtype)


def training_step(model, batch: dict, loss_fn: ImageLoss, background: float, backend: str) -> tuple[torch.Tensor, dict, tuple]:
    """One pair batch -> (loss, terms, (render, target)) with gradients."""
    out, posed = model(batch["src_image"], batch["template"], batch["src_viewmat"], batch["src_K"],
                       batch["tgt_viewmat"][:, :3, :3], batch["expression"], batch["coeffs"], batch["gaze"],
                       batch.get("src_mask"))
    render, alpha = render_batch(posed, out, batch, background, backend)
    m = batch["tgt_mask"][:, None]
    target = batch["tgt_image"] * m + background * (1 - m)
    loss, terms = loss_fn(render, target, alpha, batch["tgt_mask"])
    terms = {**terms, "image": float(loss.detach())}  # the image terms alone (validation compares renders by it)
    if loss_fn.cfg.unseen_prior > 0:
        term = unseen_prior_loss(out["departure"], unseen_weights(model, out, posed, batch))
        loss = loss + loss_fn.cfg.unseen_prior * term
        terms = {**terms, "unseen_prior": float(term.detach())}
    if loss_fn.cfg.rest_coeffs > 0 and batch["src_coeffs"].shape[-1]:
        term = (out["rest_coeffs"] - batch["src_coeffs"]).abs().mean()
        loss = loss + loss_fn.cfg.rest_coeffs * term
        terms = {**terms, "rest_coeffs": float(term.detach())}
    return loss, terms, (render, target)


def _reference_template(index: DatasetIndex, entry) -> np.ndarray:
    """[V, 3] reference face for anchor placement: the median template over one training clip."""
    clip = index.open(entry)
    return np.median(clip.vertices[entry.lo:entry.stop], axis=0).astype(np.float32)


def _log_validation(validation: list, writer, stage: str, step: int, v: dict) -> None:
    validation.append((step, v))
    for k, x in v.items():
        writer.add_scalar(f"val/{k}", x, step)
    log.info("%s step %d validation loss %.4f PSNR %.2f dB SSIM %.3f", stage, step, v["loss"], v["psnr"], v["ssim"])


def config_problems(cfg: TrainConfig) -> list[str]:
    """Why the files `cfg` names cannot be used, one line each, found without reading them: the data's
    (`data_file_problems`) and the backbone's (`check_pretrained`). `train` refuses on them before any clip is tracked
    and `--dry-run` ('check the config') reports them: with the example 300m config's weights/ folders absent, the
    dry run said nothing (exit 0), and training tracked the whole dataset first, then ended with 'WebSSL checkpoint
    weights/webssl-dino300m-full2b-224 not found' (user60)."""
    problems = data_file_problems(cfg.data)
    if cfg.backbone_weights:
        try:
            check_pretrained(cfg.backbone_weights)
        except ValueError as e:
            problems.append(f"backbone_weights: {e}")
    return problems


def dataset_index(cfg: DataConfig, world: int = 1) -> DatasetIndex:
    """The prepared dataset index. A single process prepares what is missing; under torchrun the index
    must exist (`gaussian-head prepare CONFIG`), so no rank waits on another's tracking."""
    try:
        return DatasetIndex.load(cfg)
    except ValueError:
        if world > 1:
            raise
    log.info("no dataset index yet: preparing the data in this process (gaussian-head prepare does it separately)")
    return prepare_dataset(cfg)


@torch.no_grad()
def validate(model, ds: PairDataset, loss_fn: ImageLoss, background: float, backend: str, batch_size: int) -> dict:
    """Mean loss terms, PSNR (core/metrics.py) and SSIM (metrics.ssim's value, computed on the model's device by
    losses.ssim_map: skimage on the CPU took 2.6 of validate()'s 11.8 s in a 16-step 300m run on an H200, 48 images
    at 512 px) over the whole image, on the fixed validation pairs."""
    from gaussian_head_ros.core import metrics

    was = model.training
    model.eval()
    sums, n = {}, 0
    for lo in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(lo, min(len(ds), lo + batch_size))]
        batch = {k: v.to(model.ref_vertices.device) for k, v in torch.utils.data.default_collate(items).items()}
        loss, terms, (render, target) = training_step(model, batch, loss_fn, background, backend)
        vals = {"loss": float(loss), **terms}
        r64, t64 = render.detach().clamp(0, 1).double(), target.detach().clamp(0, 1).double()
        ssims = ssim_map(r64, t64, mode="symmetric").mean((1, 2, 3)).tolist()  # metrics.ssim's values, on the device
        for b in range(render.shape[0]):
            r, t = r64[b].permute(1, 2, 0).cpu().numpy(), t64[b].permute(1, 2, 0).cpu().numpy()
            per = {"psnr": metrics.psnr(r, t), "ssim": ssims[b]}
            for k, v in {**vals, **per}.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
    model.train(was)
    return {k: v / n for k, v in sums.items()}


def _param_groups(model: RARModel, stage: StageConfig) -> list[dict]:
    bb = [p for p in model.backbone.parameters() if p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    groups = [{"params": rest, "lr": stage.lr, "base_lr": stage.lr}]
    if bb and stage.backbone_lr > 0:
        groups.append({"params": bb, "lr": stage.backbone_lr, "base_lr": stage.backbone_lr, "weight_decay": 0.05})
    return groups


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Run every stage; returns {"checkpoint": final path, "history": [(step, loss)], "validation": [...], "model"}.
    `resume`: continue from <out_dir>/checkpoints/last.pt (logged as '<stage> step k/n'); one past its last stage
    trains nothing and rewrites nothing, and says so (`_ended_run`). A run stopped by any exception (Ctrl-C,
    SIGTERM, a crash) logs what --resume continues from before it propagates (`_stopped_run`)."""
    t_start = time.time()
    problems = config_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))
    dist = _Dist(cfg.device)
    dev = dist.device
    out_dir = Path(cfg.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    backend = cfg.render_backend if cfg.render_backend != "auto" else ("gsplat" if dev.type == "cuda" else "torch")
    torch.manual_seed(cfg.seed + dist.rank)
    index = dataset_index(cfg.data, dist.world)
    train_entries, val_entries = index.split(cfg.data)
    mine = DatasetIndex.shard(train_entries, dist.rank, dist.world)
    log.info("rank %d: %d of %d training clips, %d validation clips (index %s)", dist.rank, len(mine),
             len(train_entries), len(val_entries), DatasetIndex.path_for(cfg.data))
    stage_index, stage_step, step, opt_state = 0, 0, 0, None
    last = ckpt_dir / "last.pt"
    if resume and last.exists():
        blob = read_checkpoint(last)
        model = model_from_state(RARConfig.from_dict(blob["config"]), blob["model"], blob.get("backbone_ref"),
                                 referenced_backbone(last, blob.get("backbone_ref"), cfg.backbone_weights or None))
        ts = blob.get("train_state", {})
        stage_index, stage_step, step = int(ts.get("stage_index", 0)), int(ts.get("stage_step", 0)), int(blob["step"])
        opt_state = blob.get("optimizer")
        if stage_index >= len(cfg.stages):  # it said 'resuming ... at stage 2 step 0', trained nothing and wrote
            log.warning(_ended_run(last, blob, cfg))  # model.pt and config.json again with the new steps (user60)
            dist.close()
            return {"checkpoint": str(ckpt_dir / "model.pt"), "history": [], "validation": [], "model": model.to(dev)}
        at = cfg.stages[stage_index]
        log.info("resuming %s (step %d) at %s step %d/%d", last, step, at.name, stage_step, at.steps)
    else:
        if resume:
            log.warning("--resume: no %s yet, starting from scratch", last)
        from gaussian_head_ros.core.reconstruct.template import template_faces

        rar_cfg = replace(model_config(cfg), crop_m=cfg.data.crop_m,
                          crop_center_m=tuple(cfg.data.crop_center_m), source_size=cfg.stages[-1].resolution)
        model = build_model(rar_cfg, _reference_template(index, train_entries[0]), template_faces(),
                            cfg.backbone_weights or None)
        if dist.main and not cfg.backbone_weights and cfg.checkpoint_backbone == "reference":
            # A random backbone has no file to reference: written once per run, so that every checkpoint
            # holds only what some stage trains (the frozen 300m backbone was 1.2 GB in each).
            model.backbone_source = save_backbone(model.backbone, ckpt_dir / "backbone")
    model.to(dev)
    model.backbone_autocast = cfg.amp and dev.type == "cuda"
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    writer = None
    if dist.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tensorboard"))
    loss_fn = ImageLoss(cfg.loss).to(dev)
    history, validation, terms = [], [], {}
    full = cfg.checkpoint_backbone == "full"
    names = list(model.reenactment.names)
    saved = (step, stage_index, stage_step) if resume and last.exists() else None  # what --resume continues from
    si, done = stage_index, stage_step  # where the run is: stage index, steps of that stage taken
    try:
        for si in range(stage_index, len(cfg.stages)):
            stage = cfg.stages[si]
            if stage.steps <= 0:
                log.info("stage %s has 0 steps: skipped", stage.name)
                continue
            blocks = None if stage.trainable_blocks < 0 else stage.trainable_blocks
            model.freeze_backbone(0 if stage.backbone_lr <= 0 else blocks)
            model.backbone.grad_checkpointing = dev.type == "cuda" and stage.trainable_blocks != 0
            opt = torch.optim.AdamW(_param_groups(model, stage), lr=stage.lr, weight_decay=0.0)
            if opt_state is not None and si == stage_index:
                opt.load_state_dict(opt_state)
            net = model
            if dist.world > 1:
                net = torch.nn.parallel.DistributedDataParallel(
                    model, device_ids=[dev.index] if dev.type == "cuda" else None)
            ds = PairDataset(mine, stage.resolution, names, length=cfg.pairs_per_epoch, cfg=cfg.data,
                             seed=[cfg.seed, si, dist.rank], root=index.root)
            val_ds = PairDataset(val_entries, stage.resolution, names, length=cfg.data.val_pairs, cfg=cfg.data,
                                 seed=VALIDATION_SEED, root=index.root)  # the same pairs for every run
            model.train()
            s0 = done = stage_step if si == stage_index else 0
            batches = _batches(ds, stage, cfg.num_workers, s0 * stage.batch_size)
            if dist.main and cfg.val_every and step == 0:  # the untrained model: where validation starts
                _log_validation(validation, writer, stage.name, 0,
                                validate(model, val_ds, loss_fn, cfg.background, backend, stage.batch_size))
            t0 = time.time()
            for s in range(s0, stage.steps):
                batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * _lr_factor(s, stage)
                loss, terms, images = training_step(net, batch, loss_fn, cfg.background, backend)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if stage.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], stage.grad_clip)
                opt.step()
                step, done = step + 1, s + 1
                value = float(loss.detach())
                if s == s0:
                    log.info("rank %d: first step %.1f s after start, peak RSS %.0f MB", dist.rank,
                             time.time() - t_start, peak_rss_mb())
                history.append((step, value))
                if s % cfg.log_every == 0 or s == stage.steps - 1:
                    mean = dist.mean(value)
                    if writer:
                        writer.add_scalar("loss/total", mean, step)
                        for k, v in terms.items():
                            writer.add_scalar(f"loss/{k}", v, step)
                        writer.add_scalar("lr", opt.param_groups[0]["lr"], step)
                        log.info("%s step %d/%d loss %.4f (%s) %.2f s/step", stage.name, s + 1, stage.steps, mean,
                                 " ".join(f"{k} {v:.4f}" for k, v in terms.items()), (time.time() - t0) / (s - s0 + 1))
                if writer and cfg.image_every and s % cfg.image_every == 0:
                    render, target = images
                    writer.add_images("render_vs_target", torch.cat([render[:1], target[:1]]).clamp(0, 1).detach(), step)
                if dist.main and cfg.val_every and ((s + 1) % cfg.val_every == 0 or s + 1 == stage.steps):
                    _log_validation(validation, writer, stage.name, step,
                                    validate(model, val_ds, loss_fn, cfg.background, backend, stage.batch_size))
                state = {"stage_index": si, "stage_step": s + 1}
                if dist.main and cfg.checkpoint_every and (s + 1) % cfg.checkpoint_every == 0 and s + 1 < stage.steps:
                    save_checkpoint(last, model, step, stage.name, asdict(cfg), opt.state_dict(), terms, state, full)
                    saved = (step, si, s + 1)
            if dist.main:
                state = {"stage_index": si + 1, "stage_step": 0}
                save_checkpoint(ckpt_dir / f"{stage.name}.pt", model, step, stage.name, asdict(cfg), None, terms, state, full)
                save_checkpoint(last, model, step, stage.name, asdict(cfg), None, terms, state, full)
                saved = (step, si + 1, 0)
            opt_state = None
        final = ckpt_dir / "model.pt"
        if dist.main:
            save_checkpoint(final, model, step, cfg.stages[-1].name, asdict(cfg), None, terms,
                            {"stage_index": len(cfg.stages), "stage_step": 0}, full)
        dist.barrier()
    except BaseException as e:  # Ctrl-C, SIGTERM, a crash: it said only 'interrupted (Ctrl-C)' (user60)
        if dist.main:
            log.warning(_stopped_run(e, cfg, last, step, si, done, saved))
        raise
    finally:
        if writer:
            writer.close()
        dist.close()
    return {"checkpoint": str(final), "history": history, "validation": validation, "model": model}


def _stage_at(cfg: TrainConfig, stage_index: int, stage_step: int) -> str:
    """'stage1 step 10/30' (the stage's own count), or 'the end of stage2' past its last step."""
    if stage_index >= len(cfg.stages):
        return f"the end of {cfg.stages[-1].name}"
    stage = cfg.stages[stage_index]
    return f"{stage.name} step {stage_step}/{stage.steps}"


def _stopped_run(e: BaseException, cfg: TrainConfig, last: Path, step: int, si: int, done: int, saved) -> str:
    """The line a run stopped by `e` at overall `step` (stage index `si`, `done` steps of it taken) logs: what `--resume`
    continues from (`saved`: (step, stage index, stage step) of the last checkpoint written or resumed from, None when
    none is), and the steps it takes again."""
    # (the CLI raises its _Terminated for a SIGTERM, as Python raises KeyboardInterrupt for a SIGINT: said
    # 'stopped (_Terminated)' before this line named it)
    why = {"KeyboardInterrupt": "Ctrl-C", "_Terminated": "SIGTERM"}.get(type(e).__name__, type(e).__name__)
    if saved is None:
        return (f"stopped ({why}) at step {step}, before the first checkpoint (every checkpoint_every = "
                f"{cfg.checkpoint_every} steps, and at each stage's end): --resume starts from scratch")
    return (f"stopped ({why}) at step {step} ({_stage_at(cfg, si, done)}): --resume (same config, --set and --out) continues "
            f"from {last}, step {saved[0]} ({_stage_at(cfg, saved[1], saved[2])}), the last checkpoint (every "
            f"checkpoint_every = {cfg.checkpoint_every} steps, and at each stage's end); steps taken again: "
            f"{step - saved[0]}")


def _ended_run(last: Path, blob: dict, cfg: TrainConfig) -> str:
    """The line `--resume` logs for a run whose last.pt is past its last stage: nothing is trained, and a stage given
    more steps since is not continued (its optimiser state is not kept at a stage's end)."""
    before = {s.get("name"): s.get("steps") for s in (blob.get("train_config") or {}).get("stages", [])}
    longer = [f"{s.name} {before[s.name]} -> {s.steps}" for s in cfg.stages
              if s.name in before and before[s.name] != s.steps]
    more = (f" This config gives stages other steps ({', '.join(longer)}): a stage that ended is not continued (its "
            "optimiser state is not kept at a stage's end): to train longer, start a new run with those steps (another "
            "--out; it starts from scratch)." if longer else "")
    return (f"--resume: nothing to train: {last} (step {blob.get('step')}) is past the last stage, "
            f"{cfg.stages[-1].name}: the run ended; its model is {last.parent / 'model.pt'}, left as it was.{more}")


def _merge(base: dict, over: dict, where: str = "model") -> dict:
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            raise ValueError(f"unknown {where} key {k!r} (allowed: {', '.join(base)})")
        out[k] = _merge(base[k], v, f"{where}.{k}") if isinstance(v, dict) and isinstance(base[k], dict) else v
    return out


def model_config(cfg: TrainConfig) -> RARConfig:
    """The preset's RARConfig with TrainConfig.model's (nested) overrides, e.g. {generator: {num_face: 8000}}."""
    return RARConfig.from_dict(_merge(preset_config(cfg.preset).to_dict(), cfg.model or {}))


class _Indices(torch.utils.data.Sampler):
    """Endless fresh pair indices: epoch e yields e * n ... (e + 1) * n - 1 (the dataset seeds on them)."""

    def __init__(self, n: int, start: int = 0):
        self.n, self.start = n, start

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(range(self.start, self.start + self.n))


def _batches(ds: PairDataset, stage: StageConfig, workers: int, first_index: int):
    """Endless batches of a stage, starting at pair index `first_index` (resuming)."""
    start = first_index
    while True:
        loader = torch.utils.data.DataLoader(ds, batch_size=stage.batch_size, sampler=_Indices(len(ds), start),
                                             drop_last=True, num_workers=workers)
        yield from loader
        start += len(ds)
