"""RAR, assembled: WebSSL backbone -> Gaussian generator (+ the per-avatar reenactment basis) -> avatar.

`RARModel.reconstruct` runs once per photo and returns the avatar's tensors; `to_avatar` turns them into
the GaussianAvatar of core/avatar.py (the reenactment basis goes into its expression basis), which the
unchanged `drive()` and render node use. `pose` is the differentiable per-frame path used in training
(the torch twin of `drive()` for bound Gaussians).

Checkpoint format (`save_checkpoint` / `load_checkpoint`, a `torch.save` dict, docs/TRAINING.md):
    format      "gaussian_head_ros.rar"
    version     1
    config      RARConfig as nested dicts (the model is rebuilt from it, then loaded with strict=True)
    model       state_dict, including the template topology buffers (ref_vertices, generator.faces); when
                the backbone came from a weights file (WebSSL's, or the random backbone training wrote
                once per run) and `full` is off, only the backbone tensors that were trained are in it,
                the rest is named by backbone_ref
    backbone_ref  {"path", "sha256", "bytes"} of that file (backbone.weights_reference), or absent
    step        optimiser steps taken in all stages
    stage       name of the training stage that wrote it
    train_state {"stage_index", "stage_step"}: where `gaussian-head train --resume` continues
    train_config  the TrainConfig as a dict; metrics: last logged losses
    optimizer   AdamW state (only in checkpoints meant for resuming)
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from gaussian_head_ros.core.control import head_rotation_in_view
from gaussian_head_ros.core.landmarks import NUM_LANDMARKS

from gaussian_head_ros.core.files import TORCH_FILE, file_kind, shown
from gaussian_head_ros.core.avatar import PART_MOUTH, GaussianAvatar, SourceCamera, rgb_to_sh_dc, sh_zonal
from gaussian_head_ros.core.model.backbone import (BACKBONE_PRESETS, IMAGENET_MEAN, IMAGENET_STD, BackboneConfig,
                                                   ViTBackbone, build_backbone, load_pretrained, load_referenced,
                                                   weights_reference)
from gaussian_head_ros.core.model.generator import VIEW_LOBE, GaussianGenerator, GeneratorConfig, anchors_from_state
from gaussian_head_ros.core.model.reenactment import ReenactmentConfig, ReenactmentModule, pose_gaussians

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "gaussian_head_ros.rar"
CHECKPOINT_VERSION = 1


def source_rotations(viewmat) -> torch.Tensor:
    """[B, 4, 4] source viewmats (head to camera) -> [B, 3, 3] float64 the control rotations that give those photos back
    (`control.head_rotation_in_view`), the photo_rotation of `pose` (the exported avatar's source camera's, in
    drive())."""
    vm = viewmat.detach().cpu().double().numpy()
    return torch.as_tensor(np.stack([head_rotation_in_view(v[:3, :3], v[:3, 3]) for v in vm]))


def source_photo_points(template, viewmat, K) -> np.ndarray:
    """template [B, V, 3] head frame (metres), viewmat [B, 4, 4], K [B, 3, 3] -> [B, V, 2] float64 pixels: each
    template seen in its source photo, the photo_points of `pose` (`SourceCamera.project`, what drive() measures the
    rest gaze's yaw on for the exported avatar)."""
    np_of = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    t, vm, k = np_of(template), np_of(viewmat), np_of(K)
    return np.stack([SourceCamera(np.array([ki[0, 0], ki[1, 1], ki[0, 2], ki[1, 2]]), v, (0, 0)).project(ti)
                     for ti, v, ki in zip(t, vm, k)])


@dataclass(frozen=True)
class RARConfig:
    """The whole learned reconstructor."""

    preset: str = "tiny"  # the PRESETS row it came from (recorded in avatars as "rar:<preset>")
    backbone: BackboneConfig = field(default_factory=lambda: BACKBONE_PRESETS["tiny"])
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    reenactment: ReenactmentConfig = field(default_factory=ReenactmentConfig)
    input_size: int = 224  # backbone input side (multiple of 14); the photo crop is resized to it
    source_size: int = 512  # side of the photo crop the generator samples colours from at inference
    crop_m: float = 0.42  # crop side at the head's depth, metres (core/reconstruct/framing.py; = training data)
    crop_center_m: tuple[float, float] = (0.0, 0.03)  # crop centre in the head frame (x, y), metres
    num_vertices: int = NUM_LANDMARKS  # template vertices V (vertex i == MediaPipe landmark i)
    num_faces: int = 0  # template triangles F (set from the topology the model is built with)

    def to_dict(self) -> dict:
        """This config as nested dicts of plain values (dataclasses.asdict), as checkpoints store it."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "RARConfig":
        """`to_dict`'s dict (a checkpoint's config) -> RARConfig, nested configs included; missing keys take
        their defaults. Raises ValueError naming the keys a config does not have."""
        def build(cls, values):
            kw = {}
            for f in fields(cls):
                if f.name not in values:
                    continue
                v = values[f.name]
                if f.name == "backbone":
                    v = build(BackboneConfig, v)
                elif f.name == "generator":
                    v = build(GeneratorConfig, v)
                elif f.name == "crop_center_m":
                    v = tuple(v)
                elif f.name == "reenactment":
                    v = build(ReenactmentConfig, {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
                kw[f.name] = v
            unknown = set(values) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
            return cls(**kw)

        return build(RARConfig, d)


_SMALL_GEN = dict(feat_dim=32, anchor_dim=16, global_dim=32, hidden=64, eye_spacing_m=0.0012, mouth_spacing_m=0.0015)
# One row per size. Every WebSSL-sized preset makes the same avatar (same Gaussian count and basis), so
# the per-frame cost (drive + rasterize) does not depend on which reconstructor made it.
PRESETS: dict[str, RARConfig] = {
    "tiny": RARConfig("tiny", BACKBONE_PRESETS["tiny"],
                      GeneratorConfig(num_face=1500, num_head=1000, num_torso=300, feat_dim=16, anchor_dim=8,
                                      global_dim=16, hidden=32, eye_spacing_m=0.002, mouth_spacing_m=0.002)),
    "small": RARConfig("small", BACKBONE_PRESETS["small"],
                       GeneratorConfig(num_face=6000, num_head=4000, num_torso=1000, **_SMALL_GEN)),
    **{name: RARConfig(name, BACKBONE_PRESETS[name], GeneratorConfig(feat_dim=96, hidden=256))
       for name in ("300m", "1b", "2b", "3b", "5b", "7b")},
}


def preset_config(name: str, **overrides) -> RARConfig:
    """The RARConfig of the size preset `name` (PRESETS: "small", "300m" ... "7b"), with the fields in `overrides`
    replaced; ValueError naming the presets for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown RAR preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides) if overrides else PRESETS[name]


class RARModel(nn.Module):
    """Backbone + generator + reenactment module over one template topology (ref_vertices, faces).
    `backbone_device="meta"` builds the backbone as shapes only (no memory, no random initialisation),
    to be filled by `load_state_dict(..., assign=True)` or replaced by a pretrained one."""

    def __init__(self, cfg: RARConfig, ref_vertices: np.ndarray, faces: np.ndarray, backbone_device=None,
                 anchors: dict | None = None):
        super().__init__()
        ref_vertices = np.asarray(ref_vertices, np.float32)
        faces = np.asarray(faces, np.int64)
        if ref_vertices.ndim != 2 or ref_vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"template must be [V, 3] vertices and [F, 3] faces, got {ref_vertices.shape} / {faces.shape}")
        if cfg.input_size % cfg.backbone.patch_size:
            raise ValueError(f"input_size {cfg.input_size} is not a multiple of the patch size {cfg.backbone.patch_size}")
        self.cfg = replace(cfg, num_vertices=len(ref_vertices), num_faces=len(faces))
        self.register_buffer("ref_vertices", torch.tensor(ref_vertices))  # [V, 3] canonical template (a copy: the template
        # may be read-only)
        self.backbone = build_backbone(cfg.backbone, device=backbone_device) if backbone_device else ViTBackbone(cfg.backbone)
        self.backbone_source: dict | None = None  # weights_reference of the pretrained file it started from
        self.backbone_trained: set[str] = set()  # backbone parameter names trained in some stage
        self.generator = GaussianGenerator(cfg.generator, cfg.backbone.hidden_size, ref_vertices, faces, anchors)
        self.reenactment = ReenactmentModule(cfg.reenactment, cfg.generator.global_dim, ref_vertices)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone_autocast = False  # run the backbone in bfloat16 autocast (CUDA training)

    # -- once per photo ---------------------------------------------------------------------------
    def reconstruct(self, image, template, viewmat, K, mask=None) -> dict:
        """image [B, 3, H, W] crop in [0, 1]; template [B, V, 3] the photo's face mesh in the head frame;
        viewmat [B, 4, 4] head -> camera; K [B, 3, 3] in `image` pixels; mask [B, H, W] the crop's person
        probability (MediaPipe selfie segmentation, as the training data caches it; None: all person). Returns the avatar tensors:
        means [B, N, 3], rgb, log_scales, quats, logit_opacities, basis [B, E, V, 3], template."""
        s = self.cfg.input_size
        x = image if image.shape[-2:] == (s, s) else F.interpolate(image, size=(s, s), mode="bilinear",
                                                                     antialias=True, align_corners=False)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.backbone_autocast):
            tokens = self.backbone((x - self.pixel_mean) / self.pixel_std)
        tokens = {k: v.float() for k, v in tokens.items()}
        out = self.generator(tokens, image, template, viewmat, K, mask)
        g = out.pop("global")
        out["basis"] = self.reenactment.personalise(g)
        out["rest_coeffs"] = self.reenactment.rest_coefficients(g)  # [B, E] the photo's own coefficients
        out["template"] = template
        return out

    def neutral_rest(self, out: dict) -> dict:
        """The avatars of a `reconstruct` batch moved to rest at the basis coefficients' zero: posed (drive's
        rules, no rotation, no landmark motion) with coefficients -rest_coeffs, the template displaced by
        -rest_coeffs x basis. Driven with a control's absolute blendshapes c, the result is the photo driven
        by c - rest_coeffs, the rule training applies with the source as the rest (deform.basis_coefficients)."""
        b = out["template"].shape[0]
        rest = out["rest_coeffs"]
        posed = self.pose(out, torch.eye(3, device=rest.device).expand(b, 3, 3), torch.zeros_like(out["template"]),
                          -rest)
        moved = {k: v for k, v in out.items() if k != "rest_coeffs"}  # rests at zero now: not baked twice
        return {**moved, "means": posed["means"], "quats": posed["quats"], "log_scales": torch.log(posed["scales"]),
                "template": out["template"] + self.reenactment.offsets(out["basis"], -rest)}

    def forward(self, image, template, viewmat, K, rotation, expression, coeffs, gaze=None, mask=None) -> tuple[dict, dict]:
        """Training step body (so DistributedDataParallel sees one forward): reconstruct from the source
        (mask: its person probability), pose for the target. Returns (avatar tensors, posed tensors)."""
        out = self.reconstruct(image, template, viewmat, K, mask)
        return out, self.pose(out, rotation, expression, coeffs, gaze, photo_rotation=source_rotations(viewmat),
                              photo_points=source_photo_points(template, viewmat, K))

    # -- per frame (training twin of drive()) ---------------------------------------------------------
    def pose(self, out: dict, rotation, expression, coeffs, gaze=None, photo_rotation=None,
             photo_points=None) -> dict:
        """Posed means/quats/scales [B, N, *] as drive() would pose the exported avatars: rotation
        [B, 3, 3] head rotation, expression [B, L, 3] landmark displacements, coeffs [B, E] (names of
        `self.reenactment.names`), gaze [B, 2, 2] rad (None: the rest gaze), photo_rotation [B, 3, 3] the source
        photos' own head rotations (`source_rotations`; None: the identity), as the exported avatar's source camera
        gives it to drive(); photo_points [B, V, 2] the templates seen in their photos (`source_photo_points`; None: the
        template's own gaze). Render them with viewmat [I | translation]."""
        g = self.generator
        return pose_gaussians(out, g.part, g.face_id, g.bary, g.faces, rotation, expression, coeffs, gaze,
                              photo_rotation=photo_rotation, photo_points=photo_points)

    def freeze_backbone(self, last_blocks: int | None) -> None:
        """Backbone.set_trainable, remembering which backbone tensors ever trained (checkpoints store them)."""
        self.backbone.set_trainable(last_blocks)
        self.backbone_trained |= {n for n, p in self.backbone.named_parameters() if p.requires_grad}

    # -- export -------------------------------------------------------------------------------------
    def to_avatar(self, out: dict, index: int = 0, source_camera: SourceCamera | None = None,
                  operator_id: str = "") -> GaussianAvatar:
        """One avatar of a `reconstruct` batch as the GaussianAvatar the render node drives, resting at the
        basis coefficients' zero (`neutral_rest`)."""
        if "rest_coeffs" in out:
            with torch.no_grad():
                out = self.neutral_rest(out)
        g = self.generator
        t = {k: v[index].detach().float().cpu().numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}
        part = g.part.cpu().numpy().astype(np.uint8)
        face_id = g.face_id.cpu().numpy().astype(np.int32)
        faces = g.faces.cpu().numpy().astype(np.int32)
        means = t["means"]
        normals = t["normals"].astype(np.float32)  # [N, 3] at the anchors (generator.anchor_normals)
        return GaussianAvatar(
            means=means.astype(np.float32), normals=normals, sh=view_sh(t["rgb"], t.get("rgb_source"), means, source_camera),
            logit_opacities=t["logit_opacities"].astype(np.float32), log_scales=t["log_scales"].astype(np.float32),
            quats=t["quats"].astype(np.float32), part=part, face_id=face_id,
            bary=g.bary.cpu().numpy().astype(np.float32) * ((face_id >= 0) | (part == PART_MOUTH))[:, None],
            template_vertices=t["template"].astype(np.float32), template_faces=faces,
            expression_names=list(self.reenactment.names), expression_basis=t["basis"].astype(np.float32),
            source_camera=source_camera, operator_id=operator_id, reconstructor=f"rar:{self.cfg.preset}")


def view_sh(rgb: np.ndarray, rgb_source: np.ndarray | None, means: np.ndarray, source_camera: SourceCamera | None) -> np.ndarray:
    """[N, K, 3] SH colours of the generator's Gaussians: rgb [N, 3] the colour seen at right angles to the source
    camera's line of sight (the side of the head), rgb_source [N, 3] the colour seen from the source camera
    (GeneratorConfig.view_outline; None or equal to rgb: DC only, K = 1). Where they differ, the colour seen along d
    is rgb + (rgb_source - rgb) x `legendre`(d . e, VIEW_LOBE) (SH degree 2, `avatar.sh_zonal`), e the direction from
    the source camera to each rest mean [N, 3] (head frame)."""
    dc = rgb_to_sh_dc(rgb)[:, None, :]
    if rgb_source is None or source_camera is None:
        return dc
    delta = np.asarray(rgb_source, np.float32) - np.asarray(rgb, np.float32)
    delta[np.abs(delta).max(1) <= 1e-4] = 0.0  # bands only where the view changes the colour
    if not delta.any():
        return dc
    vm = np.asarray(source_camera.viewmat, np.float64)
    e = np.asarray(means, np.float64) + vm[:3, :3].T @ vm[:3, 3]  # mean - camera centre
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)
    sh = sh_zonal(delta, e, VIEW_LOBE)
    sh[:, 0] += dc[:, 0]
    return sh


# ------------------------------------------------------------------------------------------------------
# Checkpoints

def save_checkpoint(path: str | Path, model: RARModel, step: int = 0, stage: str = "", train_config: dict | None = None,
                    optimizer: dict | None = None, metrics: dict | None = None, train_state: dict | None = None,
                    full: bool = False) -> None:
    """Write a checkpoint that carries its config (atomically: a partial file never replaces a good one).
    A backbone loaded from a WebSSL file (or written to one: `backbone.save_backbone`, as training does with
    a random backbone) is stored as a reference to that file (path + SHA-256) plus the backbone tensors that
    were trained; `full`, or a backbone with no file (`backbone_source` None), stores everything."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    blob = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": model.cfg.to_dict()}
    if model.backbone_source and not full:
        keep = {f"backbone.{n}" for n in model.backbone_trained}
        state = {k: v for k, v in state.items() if not k.startswith("backbone.") or k in keep}
        blob["backbone_ref"] = dict(model.backbone_source)
    blob.update({"model": state, "step": int(step), "stage": stage, "train_config": train_config or {},
                 "metrics": metrics or {}, "train_state": train_state or {}})
    if optimizer is not None:
        blob["optimizer"] = optimizer
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, checked for our format. Raises ValueError naming the file when it is missing, no
    torch.save file (what it is instead when files.kind says: `--option checkpoint=me.ply` ended in torch's
    RuntimeError traceback 'mmap can only be used with files saved with torch.save(...)', cli37), a torch.save file
    cut short (its zip's central directory, written last, missing: a copy that stopped early), not ours, or newer
    than this code."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"RAR checkpoint {shown(path)} not found")
    not_ours = f"{shown(path)} is not a gaussian_head_ros RAR checkpoint"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as e:  # not a torch.save zip, or one holding objects
        size = path.stat().st_size
        what = file_kind(path) or ("empty (0 bytes)" if size == 0 else None)
        if what == TORCH_FILE and not zipfile.is_zipfile(path):  # a torch.save file without its end: its zip's central
            raise ValueError(  # directory is written last (was said 'a zip archive, not a torch.save file', user60)
                f"{shown(path)} is a torch.save file cut short ({size} bytes, its end missing: a copy or download "
                "that stopped early, or a disk that filled while it was written): copy it again from where it was "
                "trained") from None
        why = (f"torch cannot load it: {' '.join(str(e).split())}" if what == TORCH_FILE or zipfile.is_zipfile(path)
               else f"{what}, not a torch.save file" if what else "not a torch.save file: torch saves a zip archive")
        raise ValueError(f"{not_ours} ({why}; train one with 'gaussian-head train')") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{not_ours} (train one with 'gaussian-head train')")
    if blob.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint version {blob['version']}, newer than this code ({CHECKPOINT_VERSION})")
    return blob


def model_from_state(cfg: RARConfig, state: dict, backbone_ref: dict | None = None,
                     backbone_weights: str | Path | None = None) -> RARModel:
    """Rebuild a model from a config and a state_dict (strict), topology and the generator's anchors taken from
    the state (`anchors_from_state`: not resampled by today's code). The backbone
    is built on the meta device and takes the tensors themselves (assign: no random initialisation, no
    second copy; tensors of a memory-mapped checkpoint stay mapped). With `backbone_ref` the backbone
    tensors missing from `state` come from that file (or `backbone_weights`, checked against its hash)."""
    ref = state["ref_vertices"].float().numpy()
    faces = state["generator.faces"].numpy()
    model = RARModel(cfg, ref, faces, backbone_device="meta", anchors=anchors_from_state(cfg.generator, state))
    if backbone_ref:
        stored = {k[len("backbone."):] for k in state if k.startswith("backbone.")}
        base = load_referenced(backbone_ref, backbone_weights)
        state = {**{f"backbone.{k}": v for k, v in base.state_dict().items()}, **state}
        model.backbone_source, model.backbone_trained = dict(backbone_ref), stored
    model.load_state_dict(state, strict=True, assign=True)
    return model


def referenced_backbone(path: str | Path, ref: dict | None, backbone_weights: str | Path | None = None) -> Path | None:
    """Where the backbone a checkpoint at `path` references is to be read from: `backbone_weights` when given,
    else None (the recorded path) while that exists, else a folder of the recorded name next to the checkpoint
    (a run's checkpoints/ folder moved whole, with the random backbone training wrote there). The file's
    SHA-256 is checked against the reference when it is read (`load_referenced`). Raises ValueError when
    `backbone_weights` is given and missing, or when the reference is in neither place, naming both places and
    how to give it: the message named only the path recorded at training time and said to 'pass its weights
    directory', with no word of how, nor of the folder beside the checkpoint it looks in (user60)."""
    if backbone_weights:
        if not Path(backbone_weights).exists():
            raise ValueError(f"backbone_weights {shown(backbone_weights)} not found: give the folder of the backbone "
                             f"{shown(path)} was trained with"
                             + (f" (its {Path(ref['path']).name}/, sha256 {ref['sha256'][:12]}...)" if ref else ""))
        return Path(backbone_weights)
    if not ref or Path(ref["path"]).exists():
        return None
    recorded = Path(ref["path"])
    beside = Path(path).parent / recorded.name
    if beside.exists():
        return beside
    raise ValueError(
        f"{shown(path)} needs the frozen backbone it was trained with, {recorded.name}/ (sha256 {ref['sha256'][:12]}..., "
        f"{ref.get('bytes', 0) / 2**20:.1f} MiB; the WebSSL download, or the folder a run with a random backbone wrote "
        f"beside its checkpoints), and it is in neither place looked for: {recorded} (where training read it) nor "
        f"{shown(beside)} (beside the checkpoint). Copy that folder beside the checkpoint, or give where it is now as "
        "backbone_weights (gaussian-head reconstruct --option backbone_weights=DIR; reconstruction_node's "
        "backbone_weights parameter); or train with checkpoint_backbone: full for a checkpoint that needs nothing else")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    backbone_weights: str | Path | None = None) -> RARModel:
    """A ready-to-run model (eval mode) from a checkpoint written by `save_checkpoint`. `backbone_weights`:
    where the referenced frozen backbone lies now, when not at the path recorded at training time; without
    it a folder of the recorded name next to the checkpoint is used when the recorded path is gone (a run's
    checkpoints/ folder moved whole, with the random backbone training wrote there). Either way the
    file's SHA-256 must be the recorded one. Raises ValueError naming the file as `read_checkpoint` does, and
    when its weights do not fit this code's model (a checkpoint of another version: torch's RuntimeError 'Error(s)
    in loading state_dict ... Unexpected key(s)' over several lines was a traceback of `gaussian-head reconstruct`)."""
    blob = read_checkpoint(path)
    ref = blob.get("backbone_ref")
    backbone = referenced_backbone(path, ref, backbone_weights)
    try:
        model = model_from_state(RARConfig.from_dict(blob["config"]), blob["model"], ref, backbone)
    except (RuntimeError, KeyError) as e:  # load_state_dict's missing, unexpected or mis-sized tensors; a key gone
        why = " ".join(str(e).split()) if isinstance(e, RuntimeError) else f"it lacks {e}"
        raise ValueError(f"{shown(path)}: its weights do not fit this code's RAR model ({why}): a checkpoint of "
                         "another version of gaussian_head_ros; use that version or train again") from None
    log.info("loaded RAR %s (step %s, stage %s) from %s", model.cfg.preset, blob.get("step"), blob.get("stage"), path)
    return model.to(device).eval()


def build_model(cfg: RARConfig, ref_vertices: np.ndarray, faces: np.ndarray, backbone_weights: str | Path | None = None) -> RARModel:
    """A fresh model; with `backbone_weights` (a local WebSSL directory) its backbone starts pretrained.
    The checkpoint's config.json decides the backbone shape (it must fit the preset's width)."""
    model = RARModel(cfg, ref_vertices, faces, backbone_device="meta" if backbone_weights else None)
    if backbone_weights:
        bb = load_pretrained(backbone_weights)
        if bb.cfg.hidden_size != cfg.backbone.hidden_size:
            raise ValueError(f"backbone weights have width {bb.cfg.hidden_size}, preset {cfg.preset!r} expects "
                             f"{cfg.backbone.hidden_size}: pick the matching preset")
        model.backbone = bb
        model.cfg = replace(model.cfg, backbone=bb.cfg)
        model.backbone_source = weights_reference(backbone_weights)
    return model
