"""The WebSSL backbone: a DINOv2-architecture vision transformer (patch 14, 224 px), written here.

WebSSL ("Scaling Language-Free Visual Representation Learning", Fan et al. 2025, arXiv 2504.01017)
trains DINOv2 ViTs from 300M to 7B parameters on 2B web images. Its checkpoints are published in the
HuggingFace `Dinov2Model` format (a `config.json` next to `model.safetensors` or `pytorch_model.bin`)
under CC-BY-NC 4.0: this module never downloads them, it loads a local directory the user gives
(`load_pretrained`), mapping HuggingFace names to ours through one function (`hf_key_to_ours`).

Sizes of the published models (facts read from facebookresearch/webssl `dinov2/vision_transformer.py`
and its README, the HuggingFace repositories `facebook/webssl-dino*-224`, and the fp32 weight sizes
listed for them by MTEB; see `WEBSSL_PUBLISHED`):

| preset | width | depth | heads | FFN               | params (fp32 weights) |
|--------|-------|-------|-------|-------------------|-----------------------|
| 300m   | 1024  | 24    | 16    | SwiGLU 2736       | 0.304 B (ViT-L)       |
| 1b     | 1536  | 40    | 24    | SwiGLU 4096       | 1.135 B (DINOv2 g)    |
| 2b     | 2688  | 24    | 21    | SwiGLU 7168       | 2.084 B               |
| 3b     | 3072  | 26    | 24    | SwiGLU 8192       | 2.948 B               |
| 5b     | 3584  | 32    | 28    | SwiGLU 9560       | 4.938 B               |
| 7b     | 4096  | 32    | 32    | SwiGLU 10928      | 6.450 B (named "7B")  |

SwiGLU hidden width follows DINOv2/HF: int(int(width * mlp_ratio) * 2 / 3) rounded up to a multiple of 8.
All use SwiGLU (the WebSSL README builds them with ffn_layer='swiglu'; for the 300M model a GELU MLP would
give 303.23M parameters, 1157 MB, against the published 1158 MB, SwiGLU 303.66M). Whatever a checkpoint's
config.json says wins when loading: the presets only size models built without weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import re
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneConfig:
    """Shape of a DINOv2-style ViT. Field names follow HF `Dinov2Config` where one exists."""

    hidden_size: int = 1024  # token width D
    num_hidden_layers: int = 24  # transformer blocks
    num_attention_heads: int = 16  # D must divide by it
    mlp_ratio: float = 4.0  # FFN width = D * mlp_ratio (SwiGLU: 2/3 of that, rounded up to 8)
    use_swiglu_ffn: bool = False  # SwiGLU FFN (DINOv2 giant and the larger WebSSL models) instead of GELU MLP
    patch_size: int = 14  # pixels per patch side
    image_size: int = 224  # training resolution: the position table has (image_size / patch_size)^2 + 1 rows
    num_register_tokens: int = 0  # extra learned tokens after CLS ("ViTs need registers"); 0 for WebSSL
    layerscale_value: float = 1e-5  # initial LayerScale gamma (checkpoints overwrite it)
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True

    @property
    def ffn_hidden(self) -> int:
        """The feed-forward width: hidden_size x mlp_ratio, or for SwiGLU 2/3 of it rounded up to a multiple
        of 8 (as DINOv2's SwiGLUFFNFused)."""
        h = int(self.hidden_size * self.mlp_ratio)
        return (int(h * 2 / 3) + 7) // 8 * 8 if self.use_swiglu_ffn else h

    @property
    def grid(self) -> int:
        """Patches per image side: image_size // patch_size."""
        return self.image_size // self.patch_size

    def validate(self) -> None:
        """Raise ValueError when hidden_size is not a multiple of num_attention_heads or image_size not a
        multiple of patch_size."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")

    @staticmethod
    def from_hf(cfg: dict) -> "BackboneConfig":
        """From a HuggingFace `Dinov2Config` dict (config.json); unknown keys are ignored."""
        if cfg.get("model_type", "dinov2") not in ("dinov2", "dinov2_with_registers"):
            raise ValueError(f"config.json describes a '{cfg.get('model_type')}' model, expected dinov2")
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {cfg['hidden_act']!r} is not supported (gelu only)")
        out = BackboneConfig(
            hidden_size=int(cfg["hidden_size"]), num_hidden_layers=int(cfg["num_hidden_layers"]),
            num_attention_heads=int(cfg["num_attention_heads"]), mlp_ratio=float(cfg.get("mlp_ratio", 4)),
            use_swiglu_ffn=bool(cfg.get("use_swiglu_ffn", False)), patch_size=int(cfg.get("patch_size", 14)),
            image_size=int(cfg.get("image_size", 224)), num_register_tokens=int(cfg.get("num_register_tokens", 0)),
            layerscale_value=float(cfg.get("layerscale_value", 1.0)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-6)), qkv_bias=bool(cfg.get("qkv_bias", True)))
        out.validate()
        return out

    def to_hf(self) -> dict:
        """The HuggingFace config.json content for this shape."""
        d = {k: v for k, v in asdict(self).items()}
        d.update(model_type="dinov2", architectures=["Dinov2Model"], hidden_act="gelu", num_channels=3)
        return d


# Size presets. tiny/small exist for tests and CPU experiments; the rest match the published WebSSL models.
BACKBONE_PRESETS: dict[str, BackboneConfig] = {
    "tiny": BackboneConfig(hidden_size=48, num_hidden_layers=2, num_attention_heads=3),
    "small": BackboneConfig(hidden_size=192, num_hidden_layers=6, num_attention_heads=3),
    "300m": BackboneConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, use_swiglu_ffn=True),
    "1b": BackboneConfig(hidden_size=1536, num_hidden_layers=40, num_attention_heads=24, use_swiglu_ffn=True),
    "2b": BackboneConfig(hidden_size=2688, num_hidden_layers=24, num_attention_heads=21, use_swiglu_ffn=True),
    "3b": BackboneConfig(hidden_size=3072, num_hidden_layers=26, num_attention_heads=24, use_swiglu_ffn=True),
    "5b": BackboneConfig(hidden_size=3584, num_hidden_layers=32, num_attention_heads=28, use_swiglu_ffn=True),
    "7b": BackboneConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, use_swiglu_ffn=True),
}

# preset -> (HuggingFace repository of the 224 px Web-DINO model, parameters implied by its fp32 weights:
# MTEB's memory_usage_mb * 2^20 / 4). The user downloads these themselves (CC-BY-NC 4.0).
WEBSSL_PUBLISHED: dict[str, tuple[str, float]] = {
    "300m": ("facebook/webssl-dino300m-full2b-224", 1158 * 2**20 / 4),
    "1b": ("facebook/webssl-dino1b-full2b-224", 4329 * 2**20 / 4),
    "2b": ("facebook/webssl-dino2b-full2b-224", 7951 * 2**20 / 4),
    "3b": ("facebook/webssl-dino3b-full2b-224", 11247 * 2**20 / 4),
    "5b": ("facebook/webssl-dino5b-full2b-224", 18838 * 2**20 / 4),
    "7b": ("facebook/webssl-dino7b-full8b-224", 24605 * 2**20 / 4),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the normalisation WebSSL/DINOv2 were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------------------------------
class LayerScale(nn.Module):
    """A learned per-channel scale on a residual branch (DINOv2's LayerScale): x [B, T, D] -> x * gamma."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x):  # [B, T, D]
        """[B, T, D] -> [B, T, D], each channel times its gamma."""
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k and v projections and an output projection."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.q = nn.Linear(d, d, bias=cfg.qkv_bias)
        self.k = nn.Linear(d, d, bias=cfg.qkv_bias)
        self.v = nn.Linear(d, d, bias=cfg.qkv_bias)
        self.proj = nn.Linear(d, d)

    def forward(self, x):  # [B, T, D] -> [B, T, D]
        """Tokens [B, T, D] -> [B, T, D]: scaled dot-product attention over all T tokens, per head, then the
        output projection."""
        b, t, d = x.shape
        q, k, v = (m(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for m in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v)  # [B, heads, T, D / heads]
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    """The transformer's feed-forward: D -> ffn_hidden -> D with a GELU between."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.ffn_hidden)
        self.fc2 = nn.Linear(cfg.ffn_hidden, cfg.hidden_size)

    def forward(self, x):
        """[..., D] -> [..., D]."""
        return self.fc2(F.gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    """The SwiGLU feed-forward (use_swiglu_ffn): D -> 2 x ffn_hidden (gate, value) -> silu(gate) * value -> D."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.w_in = nn.Linear(cfg.hidden_size, 2 * cfg.ffn_hidden)  # gate and value, concatenated
        self.w_out = nn.Linear(cfg.ffn_hidden, cfg.hidden_size)

    def forward(self, x):
        """[..., D] -> [..., D]."""
        gate, value = self.w_in(x).chunk(2, dim=-1)
        return self.w_out(F.silu(gate) * value)


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches (DINOv2)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.ls1 = LayerScale(cfg.hidden_size, cfg.layerscale_value)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = SwiGLU(cfg) if cfg.use_swiglu_ffn else MLP(cfg)
        self.ls2 = LayerScale(cfg.hidden_size, cfg.layerscale_value)

    def forward(self, x):  # [B, T, D]
        """Tokens [B, T, D] -> [B, T, D]: x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(x)))."""
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class ViTBackbone(nn.Module):
    """Image [B, 3, H, W] (ImageNet-normalised; H, W multiples of 14) -> normalised tokens."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d = cfg.hidden_size
        self.patch_embed = nn.Conv2d(3, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))  # unused here; kept so DINOv2 checkpoints load strictly
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, d)) if cfg.num_register_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid + 1, d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.grad_checkpointing = False  # recompute blocks in backward (large presets on GPUs)
        if not self.pos_embed.is_meta:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise from scratch: position embedding truncated-normal std 0.02, class and register tokens
        normal std 1e-6, every Linear truncated-normal std 0.02 with zero bias."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def _pos(self, gh: int, gw: int) -> torch.Tensor:
        """[1, 1 + gh*gw, D] position table, bicubically resized when the grid differs (as HF/DINOv2)."""
        n = self.pos_embed.shape[1] - 1
        if gh * gw == n and gh == gw:
            return self.pos_embed
        m = int(math.sqrt(n))
        patch = self.pos_embed[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2).float()
        patch = F.interpolate(patch, scale_factor=((gh + 0.1) / m, (gw + 0.1) / m), mode="bicubic", align_corners=False)
        patch = patch.to(self.pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
        return torch.cat([self.pos_embed[:, :1], patch], dim=1)

    def forward(self, x: torch.Tensor) -> dict:
        """x [B, 3, H, W] -> {"cls": [B, D], "patches": [B, H/14, W/14, D]} after the final LayerNorm."""
        b, _, h, w = x.shape
        p = self.cfg.patch_size
        if h % p or w % p:
            raise ValueError(f"backbone input {h}x{w} is not a multiple of the patch size {p}")
        tok = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, P, D]
        tok = torch.cat([self.cls_token.expand(b, -1, -1), tok], dim=1) + self._pos(h // p, w // p)
        r = 0
        if self.register_tokens is not None:
            r = self.register_tokens.shape[1]
            tok = torch.cat([tok[:, :1], self.register_tokens.expand(b, -1, -1), tok[:, 1:]], dim=1)
        for blk in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                tok = torch.utils.checkpoint.checkpoint(blk, tok, use_reentrant=False)
            else:
                tok = blk(tok)
        tok = self.norm(tok)
        return {"cls": tok[:, 0], "patches": tok[:, 1 + r:].reshape(b, h // p, w // p, -1)}

    def set_trainable(self, last_blocks: int | None) -> None:
        """None: everything trains. 0: frozen (stage 1). k > 0: only the last k blocks and the final norm
        train (stage 2, partly unfrozen). The mask token (unused without masked inputs) never trains, so
        DistributedDataParallel finds no parameter without a gradient."""
        if last_blocks is None:
            self.requires_grad_(True)
            self.mask_token.requires_grad_(False)
            return
        self.requires_grad_(False)
        if last_blocks > 0:
            for blk in self.blocks[-last_blocks:]:
                blk.requires_grad_(True)
            self.norm.requires_grad_(True)


def count_parameters(module: nn.Module) -> int:
    """Parameter count; works on the meta device (nothing allocated)."""
    return sum(p.numel() for p in module.parameters())


def build_backbone(preset_or_config: str | BackboneConfig, device: str | torch.device | None = None,
                   **overrides) -> ViTBackbone:
    """A randomly initialised backbone; device="meta" builds the shapes only (no memory)."""
    if isinstance(preset_or_config, str):
        if preset_or_config not in BACKBONE_PRESETS:
            raise ValueError(f"unknown backbone preset {preset_or_config!r}; choose from {sorted(BACKBONE_PRESETS)}")
        cfg = BACKBONE_PRESETS[preset_or_config]
    else:
        cfg = preset_or_config
    cfg = replace(cfg, **overrides) if overrides else cfg
    with torch.device(device or "cpu"):
        return ViTBackbone(cfg)


# --------------------------------------------------------------------------------------------------
# Loading HuggingFace Dinov2Model checkpoints

_HF_RULES = [  # (pattern on a HF key with the "dinov2."/"model." prefix removed, our key)
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.mask_token", "mask_token"),
    (r"embeddings\.register_tokens", "register_tokens"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.\1"),
    (r"encoder\.layer\.(\d+)\.norm([12])\.(weight|bias)", r"blocks.\1.norm\2.\3"),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)", None),  # q/k/v below
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1", r"blocks.\1.ls\2.gamma"),
    (r"encoder\.layer\.(\d+)\.mlp\.fc([12])\.(weight|bias)", r"blocks.\1.mlp.fc\2.\3"),
    (r"encoder\.layer\.(\d+)\.mlp\.weights_(in|out)\.(weight|bias)", r"blocks.\1.mlp.w_\2.\3"),
    (r"layernorm\.(weight|bias)", r"norm.\1"),
]
_QKV = {"query": "q", "key": "k", "value": "v"}


def hf_key_to_ours(key: str) -> str | None:
    """The one name mapping from a HuggingFace Dinov2Model state_dict key to ours (None: not ours, e.g. a
    classifier head or pooler)."""
    k = re.sub(r"^(module\.)?(dinov2\.|model\.|backbone\.)?", "", key)
    for pat, rep in _HF_RULES:
        m = re.fullmatch(pat, k)
        if m is None:
            continue
        if rep is None:
            return f"blocks.{m.group(1)}.attn.{_QKV[m.group(2)]}.{m.group(3)}"
        return m.expand(rep)
    return None


_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
              "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, memory-mapped (copy-on-write), without the safetensors package."""
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n <= 0 or n > 100_000_000:
            raise ValueError(f"{path} is not a safetensors file (header length {n})")
        header = json.loads(fh.read(n))
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        dt = _ST_DTYPES[info["dtype"]]
        a, b = info["data_offsets"]
        count = (b - a) // dt.itemsize
        t = torch.frombuffer(mm, dtype=dt, count=count, offset=8 + n + a) if count else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"])
    return out


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write tensors in the safetensors layout (used by tests to make HF-format checkpoints)."""
    rev = {v: k for k, v in _ST_DTYPES.items()}
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": rev[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(len(h).to_bytes(8, "little"))
        fh.write(h)
        for b in blobs:
            fh.write(b)


def _weight_files(path: Path) -> list[Path]:
    """The weight file(s) of a checkpoint file or directory; sharded checkpoints list their shards in an
    index (model.safetensors.index.json / pytorch_model.bin.index.json)."""
    if path.is_file():
        return [path]
    for name in ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth"):
        if (path / name).exists():
            return [path / name]
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).exists():
            shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
            missing = [s for s in shards if not (path / s).exists()]
            if missing:
                raise ValueError(f"{path} lacks the checkpoint shards {missing[:3]}")
            return [path / s for s in shards]
    raise ValueError(f"no model.safetensors / pytorch_model.bin (or a sharded index) in {path}")


def load_hf_state_dict(path: str | Path, own_names: set[str] | frozenset = frozenset()) -> dict[str, torch.Tensor]:
    """A HuggingFace Dinov2Model state_dict from a local file or directory, keys mapped to ours. Keys already
    in `own_names` (our state_dict names, as `save_backbone` writes them) are kept as they are: HF's names
    (embeddings.*, encoder.layer.*, layernorm.*) and ours (patch_embed, blocks.*, norm.*) do not overlap."""
    raw = {}
    for f in _weight_files(Path(path)):
        if f.suffix == ".safetensors":
            raw.update(read_safetensors(f))
        else:
            part = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
            if isinstance(part, dict) and "state_dict" in part and isinstance(part["state_dict"], dict):
                part = part["state_dict"]
            raw.update(part)
    out = {}
    for k, v in raw.items():
        ours = k if k in own_names else hf_key_to_ours(k)
        if ours is not None:
            out[ours] = v
        else:
            log.debug("checkpoint key %s is not part of the backbone; skipped", k)
    return out


def weights_reference(path: str | Path) -> dict:
    """{"path", "sha256", "bytes"} of a local WebSSL checkpoint: its absolute path and a SHA-256 over its
    weight file(s) (names and contents, in order), which a checkpoint that stores only the trained weights
    records so the frozen backbone can be found and checked again. Reads the files once (~1 s per GB)."""
    path = Path(path).resolve()
    h, total = hashlib.sha256(), 0
    for f in _weight_files(path):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
                total += len(chunk)
    return {"path": str(path), "sha256": h.hexdigest(), "bytes": total}


def load_referenced(ref: dict, path: str | Path | None = None, verify: bool = True) -> ViTBackbone:
    """The backbone a `weights_reference` names (at `path` when given: the file moved), checked against its
    hash. ValueError when it is missing or its contents differ."""
    where = Path(path or ref["path"])
    if not where.exists():
        raise ValueError(f"the checkpoint's frozen backbone {where} is missing: pass its weights directory (the "
                         f"WebSSL download, or for a random backbone the {where.name}/ folder training wrote beside "
                         f"the checkpoints; sha256 {ref['sha256'][:12]}...) or use a checkpoint saved with the full state")
    if verify:
        got = weights_reference(where)
        if got["sha256"] != ref["sha256"]:
            raise ValueError(f"backbone weights at {where} have sha256 {got['sha256'][:12]}..., the checkpoint was "
                             f"trained on {ref['sha256'][:12]}...: not the same file")
    return load_pretrained(where)


def save_backbone(backbone: ViTBackbone, folder: str | Path) -> dict:
    """Write a backbone as a weights directory `load_pretrained` reads (config.json + model.safetensors, our
    tensor names, fp32 or the tensors' own dtype) and return its `weights_reference`. Training calls it once
    per run for a randomly initialised backbone, which has no published file: the run's checkpoints then
    reference it (path + SHA-256) like real WebSSL weights instead of each storing it (1.2 GB at 300m).
    The directory is written as `folder`.partial and renamed `<folder>-<first 12 hex of its SHA-256>`, so a
    later run in the same place never overwrites the file an earlier run's checkpoints name."""
    folder = Path(folder)
    part = folder.with_name(folder.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    (part / "config.json").write_text(json.dumps(backbone.cfg.to_hf(), indent=1))
    write_safetensors(backbone.state_dict(), part / "model.safetensors")
    ref = weights_reference(part)  # the hash covers the file names and contents, not the folder's name
    final = folder.with_name(f"{folder.name}-{ref['sha256'][:12]}")
    if final.exists():  # the same tensors written before (a restarted run): keep that copy
        shutil.rmtree(part)
    else:
        part.rename(final)
    return {**ref, "path": str(final.resolve())}


def check_pretrained(path: str | Path) -> Path:
    """The config.json of the local WebSSL/DINOv2 checkpoint at `path` (a directory, or a weight file beside its
    config.json), checked without reading the weights: ValueError when the path, its config.json or its weight
    file(s) are not there. What `load_pretrained` reads first, and `gaussian-head train` checks before any clip is
    tracked (a missing backbone_weights was found only after the whole dataset was prepared; user60)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"WebSSL checkpoint {path} not found (download it yourself; see docs/TRAINING.md)")
    cfg_file = (path if path.is_dir() else path.parent) / "config.json"
    if not cfg_file.exists():
        raise ValueError(f"{cfg_file} not found: a WebSSL checkpoint directory holds config.json next to the weights")
    _weight_files(path)
    return cfg_file


def load_pretrained(path: str | Path, dtype: torch.dtype = torch.float32) -> ViTBackbone:
    """A backbone from a local HuggingFace-format WebSSL/DINOv2 directory (config.json + weights).

    Built on the meta device and filled with the checkpoint's tensors (strict: every key must match),
    so a 7B model needs its weights' memory once, not twice. Never downloads anything."""
    path = Path(path)
    cfg_file = check_pretrained(path)
    cfg = BackboneConfig.from_hf(json.loads(cfg_file.read_text()))
    model = build_backbone(cfg, device="meta")
    sd = {k: v.to(dtype) for k, v in load_hf_state_dict(path, set(model.state_dict())).items()}
    try:
        model.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not match its config.json: {e}") from None
    log.info("loaded backbone %s (%d parameters) from %s", cfg_file.parent.name, count_parameters(model), path)
    return model
