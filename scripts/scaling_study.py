#!/usr/bin/env python3
"""Scaling study: training loss against reconstructor parameter count, same data, same steps, same avatar.

For each preset the same TrainConfig is run (one stage; only the backbone changes: the generator is pinned
to one preset's so every model makes an avatar of the same size), then the final loss (mean of the last
10% of steps) is plotted against the parameter count. It also measures the per-frame cost of the
reenactment path for every trained model — the basis product alone and the whole `drive()` of the
exported avatar — which must not depend on the preset.

    python scripts/scaling_study.py --data ../shared/data/driving/lp_d18.mp4 --presets tiny small \\
        --steps 200 --resolution 64 --out runs/scaling          # CPU: minutes
    python scripts/scaling_study.py --data datasets/vfhq --presets 300m 1b 2b 3b 5b 7b --steps 20000 \\
        --resolution 256 --weights-dir weights/ --device cuda    # GPUs, with the WebSSL weights

Writes <out>/scaling.json and <out>/scaling.png; prints one line per preset.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaussian_head_ros.core.control import FaceControl, euler_to_quat  # noqa: E402
from gaussian_head_ros.core.drive import Driver  # noqa: E402
from gaussian_head_ros.core.model.backbone import WEBSSL_PUBLISHED, count_parameters  # noqa: E402
from gaussian_head_ros.core.model.rar import PRESETS  # noqa: E402
from gaussian_head_ros.core.model.reenactment import ReenactmentModule  # noqa: E402
from gaussian_head_ros.core.train.data import PairDataset  # noqa: E402
from gaussian_head_ros.core.train.trainer import config_from_dict, train  # noqa: E402

log = logging.getLogger("scaling_study")


def per_frame_cost(models: dict, clips, rounds: int = 7, repeats: int = 100) -> dict:
    """Per-frame cost of each model's reenactment path, timed round-robin (so machine load hits all alike):
    the basis product alone and the whole drive() of the exported avatar. Medians over rounds, ms."""
    any_model = next(iter(models.values()))
    ds = PairDataset(clips, any_model.cfg.source_size, any_model.reenactment.names, length=1)
    item = torch.utils.data.default_collate([ds[0]])
    cases = {}
    for name, model in models.items():
        model = model.cpu().eval()
        with torch.no_grad():
            out = model.reconstruct(item["src_image"], item["template"], item["src_viewmat"], item["src_K"])
        av = model.to_avatar(out)
        ctl = FaceControl(rotation=euler_to_quat(10, 5, 0).astype(np.float32), expression=item["expression"][0].numpy(),
                          blendshape_names=list(av.expression_names), blendshapes=item["coeffs"][0].numpy())
        cases[name] = (out["basis"], item["coeffs"], Driver(av), ctl, model.reenactment.per_frame_macs(model.cfg.num_vertices),
                       av.num_gaussians)
        cases[name][2].drive(ctl)  # compile / warm up
    times = {n: {"basis": [], "drive": []} for n in cases}
    with torch.no_grad():
        for _ in range(rounds):
            for n, (basis, coeffs, drv, ctl, _, _) in cases.items():
                t = time.perf_counter()
                for _ in range(repeats):
                    ReenactmentModule.offsets(basis, coeffs)
                times[n]["basis"].append((time.perf_counter() - t) / repeats)
                t = time.perf_counter()
                for _ in range(repeats):
                    drv.drive(ctl)
                times[n]["drive"].append((time.perf_counter() - t) / repeats)
    return {n: {"basis_ms": 1e3 * float(np.median(times[n]["basis"])), "drive_ms": 1e3 * float(np.median(times[n]["drive"])),
                "basis_macs": cases[n][4], "gaussians": cases[n][5]} for n in cases}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a clip or a folder of clips")
    ap.add_argument("--presets", nargs="*", default=["tiny", "small"], choices=list(PRESETS),
                    help="presets to train (none: only the per-frame timings of --cost-presets)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--backbone-lr", type=float, default=3e-4, help="0 freezes the backbone")
    ap.add_argument("--generator", default="tiny", choices=list(PRESETS), help="preset whose generator every run uses")
    ap.add_argument("--weights-dir", default="", help="folder holding the WebSSL checkpoints as <hf-name>/ (optional)")
    ap.add_argument("--landmarker-model", default="", help="face_landmarker.task for blendshape coefficients")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cost-presets", nargs="*", default=[], choices=list(PRESETS),
                    help="also time the per-frame path of these presets, untrained (built on the CPU)")
    ap.add_argument("--out", default="runs/scaling")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = PRESETS[args.generator].to_dict()["generator"]
    rows, models = [], {}
    data = {"root": args.data, "cache_dir": str(out / "cache"), "max_frames": args.max_frames,
            "cache_resolution": max(128, args.resolution), "landmarker_model": args.landmarker_model}
    for name in args.presets:
        weights = ""
        if args.weights_dir and name in WEBSSL_PUBLISHED:
            weights = str(Path(args.weights_dir) / WEBSSL_PUBLISHED[name][0].split("/")[1])
        cfg = config_from_dict({
            "preset": name, "model": {"generator": gen}, "backbone_weights": weights, "seed": args.seed,
            "device": args.device, "out_dir": str(out / name), "num_workers": 0, "log_every": max(1, args.steps // 10),
            "image_every": 0, "checkpoint_every": 0,
            "data": data,
            "stages": [{"name": "study", "steps": args.steps, "resolution": args.resolution,
                        "batch_size": args.batch_size, "lr": args.lr, "backbone_lr": args.backbone_lr,
                        "trainable_blocks": -1 if args.backbone_lr > 0 else 0,
                        "warmup_steps": max(1, args.steps // 10)}]})
        t0 = time.time()
        res = train(cfg)
        secs = time.time() - t0
        hist = np.array([v for _, v in res["history"]])
        tail = max(1, len(hist) // 10)
        model = models[name] = res["model"].cpu()
        row = {"preset": name, "backbone_params": count_parameters(model.backbone), "params": count_parameters(model),
               "loss_start": float(hist[:tail].mean()), "loss_final": float(hist[-tail:].mean()),
               "seconds": secs, "steps": len(hist)}
        rows.append(row)
        print(f"{name:6s} backbone {row['backbone_params'] / 1e6:9.2f} M  total {row['params'] / 1e6:9.2f} M  "
              f"loss {row['loss_start']:.4f} -> {row['loss_final']:.4f}  ({secs:.0f} s)", flush=True)
    from gaussian_head_ros.core.model.rar import RARConfig, RARModel, preset_config
    from gaussian_head_ros.core.reconstruct.template import template_faces
    from gaussian_head_ros.core.train.data import DataConfig, load_clips

    clips = load_clips(DataConfig(**data))
    ref = np.median(clips[0].vertices, axis=0)
    for name in args.cost_presets:
        if name not in models:
            pc = RARConfig.from_dict({**preset_config(name).to_dict(), "generator": gen, "source_size": args.resolution})
            models[name] = RARModel(pc, ref, template_faces())
    costs = per_frame_cost(models, clips)
    for r in rows:
        r.update(costs[r["preset"]])
    print("per-frame reenactment path (median of round-robin timings on this CPU):")
    for name, c in costs.items():
        print(f"  {name:6s} backbone {count_parameters(models[name].backbone) / 1e6:9.2f} M  basis {c['basis_ms']:.3f} ms "
              f"({c['basis_macs']} MACs)  drive {c['drive_ms']:.2f} ms ({c['gaussians']} Gaussians)")
    (out / "scaling.json").write_text(json.dumps({"args": vars(args), "rows": rows, "per_frame": costs}, indent=2))
    if not rows:
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [r["params"] for r in rows]
    ax.plot(x, [r["loss_final"] for r in rows], "o-")
    for r in rows:
        ax.annotate(r["preset"], (r["params"], r["loss_final"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("reconstructor parameters")
    ax.set_ylabel(f"training loss after {args.steps} steps")
    ax.set_title(f"RAR scaling ({args.resolution} px, same data, same avatar size)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=120)
    print(f"wrote {out / 'scaling.json'} and {out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
