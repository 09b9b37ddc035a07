"""Image losses: L1, SSIM, mask, a high-frequency term, and a VGG perceptual term when its weights are local.

All take images [B, 3, H, W] in [0, 1] (masks [B, H, W]) and return a scalar tensor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms (0 switches a term off)."""

    l1: float = 1.0  # mean absolute colour error
    ssim: float = 0.2  # 1 - SSIM (11x11 Gaussian window, sigma 1.5)
    mask: float = 0.5  # rendered opacity vs the person mask (L1)
    highfreq: float = 0.2  # L1 between the Laplacian-of-Gaussian detail layers (texture, edges)
    perceptual: float = 0.0  # VGG16 feature L1; used only when perceptual_weights is a local file
    perceptual_weights: str = ""  # torchvision-format vgg16 state_dict (e.g. vgg16-397923af.pth)
    rest_coeffs: float = 1.0  # L1 of the predicted photo coefficients vs the source frame's blendshapes (0 without)
    unseen_prior: float = 0.0  # keeps what no training view shows (head surface / torso facing away) at the prior;
    # off: at 1.0 the tiny preset's held-out image loss stalled (30 steps, 3 seeds: 0.353 -> 0.350 vs 0.268 off)


def _gauss_kernel(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, size: int = 11, sigma: float = 1.5, mode: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W]; padded by `mode`: "reflect" (torch's: the edge pixel is not
    repeated) or "symmetric" (the edge pixel repeated: scipy.ndimage's "reflect", which skimage's SSIM uses)."""
    g = _gauss_kernel(size, sigma, x.device, x.dtype)
    c = x.shape[1]
    p = size // 2

    def pad(y, dim):
        if mode == "reflect":
            return F.pad(y, (p, p, 0, 0) if dim == -1 else (0, 0, p, p), mode="reflect")
        n = y.shape[dim]
        return torch.cat([y.narrow(dim, 0, p).flip(dim), y, y.narrow(dim, n - p, p).flip(dim)], dim)

    x = F.conv2d(pad(x, -1), g.view(1, 1, 1, -1).expand(c, 1, 1, size), groups=c)
    return F.conv2d(pad(x, -2), g.view(1, 1, -1, 1).expand(c, 1, size, 1), groups=c)


def ssim_map(a: torch.Tensor, b: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
    """SSIM map [B, C, H, W] of two [B, C, H, W] images in [0, 1] (11-tap Gaussian window, sigma 1.5, K1 0.01,
    K2 0.03, population covariances: Wang et al. 2004); `mode` pads the window at the borders (`_blur`).
    With mode "symmetric" its mean over (C, H, W) is core.metrics.ssim's value (skimage, full map, data range
    1) within 1e-6 in float64 (test_train.py), computed on the images' device."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = _blur(a, mode=mode), _blur(b, mode=mode)
    var_a = _blur(a * a, mode=mode) - mu_a ** 2
    var_b = _blur(b * b, mode=mode) - mu_b ** 2
    cov = _blur(a * b, mode=mode) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of two [B, C, H, W] images in [0, 1] (`ssim_map`, torch's reflect padding: the loss term)."""
    return ssim_map(a, b).mean()


def highfreq_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between the detail layers (image minus its sigma-1 blur) of two images."""
    return (a - _blur(a, 5, 1.0) - (b - _blur(b, 5, 1.0))).abs().mean()


class VGG16Features(nn.Module):
    """VGG16 convolutions up to relu4_3, with torchvision's `features.N` parameter names (so its weights
    load strictly). Written here; weights are never downloaded."""

    CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
    TAPS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):  # [B, 3, H, W] in [0, 1] -> list of feature maps
        """[B, 3, H, W] RGB in [0, 1] -> the feature maps at TAPS (relu1_2, relu2_2, relu3_3, relu4_3), after
        ImageNet normalisation."""
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.TAPS:
                out.append(x)
        return out


def load_vgg16(path: str | Path) -> VGG16Features:
    """The perceptual loss's network: VGG16Features with the `features.*` weights (up to its last tap) of the
    torchvision VGG-16 state dict in the file `path` (loaded strictly: a missing or misshapen weight raises), in eval
    mode without gradients. Nothing downloads: the file is given."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = {k: v for k, v in sd.items() if k.startswith("features.") and int(k.split(".")[1]) <= VGG16Features.TAPS[-1]}
    net = VGG16Features()
    net.load_state_dict(sd, strict=True)
    return net.eval().requires_grad_(False)


def unseen_prior_loss(departure: dict, weight: torch.Tensor) -> torch.Tensor:
    """How far the Gaussians no view shows have moved from what the untrained generator makes them.

    departure: the generator's `departure` dict (offset [B, N, 3] in units of the part's offset limit,
    log_scale [B, N, 3] change, opacity_logit [B, N], colour [B, N, 3] logit correction of the unseen colour
    prior, visibility [B, N] logit correction); weight [B, N] in [0, 1]: 1 for a Gaussian no view of this
    step shows. Per Gaussian: |offset| + shrinking (log-scales below the base) + opacity logit below its
    start (/4) + |colour correction| + a visibility raised above the geometric one (which would paint it with
    the pixel it projects to); the weighted mean. Why: frontal talking-head clips never show the back and
    sides of the head, yet the shared per-Gaussian MLP moves those Gaussians while it learns the face
    (measured before this term: a 60-step tiny model's back/side Gaussians shrank 12.2 -> 10.2 mm, opacity
    0.88 -> 0.82: holes from the side, specks on the back). Growing and becoming more opaque are free."""
    from gaussian_head_ros.core.model.generator import INIT_OPACITY_LOGIT

    per = (departure["offset"].abs().mean(-1) + F.relu(-departure["log_scale"]).mean(-1)
           + 0.25 * F.relu(INIT_OPACITY_LOGIT - departure["opacity_logit"])
           + departure["colour"].abs().mean(-1) + F.relu(departure["visibility"]))
    return (weight * per).sum() / weight.sum().clamp(min=1.0)


class ImageLoss(nn.Module):
    """The weighted sum; `forward` returns (total, {term: value}) for logging."""

    def __init__(self, cfg: LossConfig):
        super().__init__()
        self.cfg = cfg
        self.vgg = None
        if cfg.perceptual > 0:
            p = Path(cfg.perceptual_weights) if cfg.perceptual_weights else None
            if p is not None and p.is_file():
                self.vgg = load_vgg16(p)
            else:
                log.warning("perceptual loss weight %.3g ignored: no local VGG16 weights at %r", cfg.perceptual,
                            cfg.perceptual_weights)

    def forward(self, render, target, alpha, mask) -> tuple[torch.Tensor, dict]:
        """render, target [B, 3, H, W] in [0, 1], alpha (rendered opacity), mask (person) [B, H, W] -> (the
        weighted sum of the configured terms, a scalar tensor; {term: its unweighted value as a float})."""
        cfg = self.cfg
        terms = {}
        if cfg.l1:
            terms["l1"] = (cfg.l1, (render - target).abs().mean())
        if cfg.ssim:
            terms["ssim"] = (cfg.ssim, 1 - ssim(render, target))
        if cfg.mask:
            terms["mask"] = (cfg.mask, (alpha - mask).abs().mean())
        if cfg.highfreq:
            terms["highfreq"] = (cfg.highfreq, highfreq_l1(render, target))
        if self.vgg is not None:
            fr, ft = self.vgg(render), self.vgg(target)
            terms["perceptual"] = (cfg.perceptual, sum((a - b).abs().mean() for a, b in zip(fr, ft)) / len(fr))
        total = sum(w * v for w, v in terms.values())
        return total, {k: float(v.detach()) for k, (_, v) in terms.items()}
