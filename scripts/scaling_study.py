#!/usr/bin/env python3
"""Scaling study: validation metrics against backbone parameters, same data, same steps, same avatar, >= 3 seeds.

Every preset is trained with the same TrainConfig (one stage; only the backbone changes: the generator is
pinned to one preset's so every model makes an avatar of the same size) once per seed, on the same prepared
dataset index; validation (loss, PSNR, SSIM on the fixed pairs of the held-out clip, which no run trains on)
is logged from step 0. The final validation metrics are plotted against backbone parameters with error bars
(standard deviation over seeds) in scaling.png, and every run's validation-loss curve in curves.png. It also
times each trained model once per photo (`reconstruct`: grows with the backbone) and per frame (the basis
product alone and the whole `drive()` of its avatar). With the generator pinned, the trained models' avatars
are the same size, so their per-frame figures can only differ by noise; `--cost-presets` times presets with
their own generators, the avatars they would deploy (tiny and small make smaller ones, 300m-7b the same).

    python scripts/scaling_study.py --data ../shared/data/driving --presets tiny small --seeds 0 1 2 \\
        --steps 150 --resolution 64 --out runs/scaling          # CPU: tens of minutes
    python scripts/scaling_study.py --merge runs/s0 runs/s1 runs/s2 --out runs/scaling   # runs made apart
    python scripts/scaling_study.py --data datasets/vfhq --presets 300m 1b 2b 3b 5b 7b --steps 20000 \\
        --resolution 256 --weights-dir weights/ --device cuda    # GPUs, with the WebSSL weights

Writes <out>/scaling.json, scaling.png and curves.png; prints one line per run and per preset.
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
from gaussian_head_ros.core.train.data import DataConfig, PairDataset, prepare_dataset  # noqa: E402
from gaussian_head_ros.core.train.trainer import config_from_dict, train  # noqa: E402

log = logging.getLogger("scaling_study")


def per_frame_cost(models: dict, clips, rounds: int = 7, repeats: int = 100) -> dict:
    """What each model costs, timed round-robin (so machine load hits all alike), medians over rounds, ms:
    once per photo the whole `reconstruct` (backbone + generator: this grows with the backbone), and per
    frame the basis product alone and the whole drive() of the exported avatar (this depends on the avatar's
    size, which the generator sets, and not on the backbone, which drive() never runs)."""
    any_model = next(iter(models.values()))
    ds = PairDataset(clips, any_model.cfg.source_size, any_model.reenactment.names, length=1)
    item = torch.utils.data.default_collate([ds[0]])
    cases, photo = {}, {}
    for name, model in models.items():
        model = model.cpu().eval()
        args = (item["src_image"], item["template"], item["src_viewmat"], item["src_K"], item["src_mask"])
        with torch.no_grad():
            out = model.reconstruct(*args)  # warm-up, and the avatar timed below
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                model.reconstruct(*args)
                runs.append(time.perf_counter() - t)
        photo[name] = 1e3 * float(np.median(runs))
        av = model.to_avatar(out)
        # a control carries the target's own blendshape scores (0..1); the item's coeffs are relative to the source's
        ctl = FaceControl(rotation=euler_to_quat(10, 5, 0).astype(np.float32), expression=item["expression"][0].numpy(),
                          blendshape_names=list(av.expression_names),
                          blendshapes=(item["coeffs"][0] + item["src_coeffs"][0]).numpy())
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
                "reconstruct_ms": photo[n], "basis_macs": cases[n][4], "gaussians": cases[n][5]} for n in cases}


def _metric(v: dict, k: str) -> float:
    """A validation metric; 'image' = the loss without the rest-coefficient term (runs logged before it was)."""
    if k == "image" and "image" not in v:
        return v["loss"] - v.get("rest_coeffs", 0.0)
    return v[k]


def summarise(runs: list) -> list:
    """One row per preset: validation metrics at the start and the end, mean and std over its seeds."""
    rows = []
    for name in dict.fromkeys(r["preset"] for r in runs):
        rs = [r for r in runs if r["preset"] == name]
        row = {"preset": name, "backbone_params": rs[0]["backbone_params"], "params": rs[0]["params"],
               "seeds": [r["seed"] for r in rs]}
        for k in ("loss", "image", "psnr", "ssim"):
            start = np.array([_metric(r["validation"][0], k) for r in rs])
            end = np.array([_metric(r["validation"][-1], k) for r in rs])
            row[f"val_{k}_start"], row[f"val_{k}"], row[f"val_{k}_std"] = float(start.mean()), float(end.mean()), float(end.std())
        row["val_loss_fell_in"] = int(sum(r["validation"][-1]["loss"] < r["validation"][0]["loss"] for r in rs))
        row["val_image_fell_in"] = int(sum(_metric(r["validation"][-1], "image") < _metric(r["validation"][0], "image")
                                           for r in rs))
        rows.append(row)
        print(f"{name:6s} backbone {row['backbone_params'] / 1e6:9.2f} M  {len(rs)} seeds: validation loss "
              f"{row['val_loss_start']:.4f} -> {row['val_loss']:.4f} +- {row['val_loss_std']:.4f} (fell in "
              f"{row['val_loss_fell_in']}/{len(rs)}); image terms {row['val_image_start']:.4f} -> {row['val_image']:.4f} +- "
              f"{row['val_image_std']:.4f} (fell in {row['val_image_fell_in']}/{len(rs)}), "
              f"PSNR {row['val_psnr']:.2f} +- {row['val_psnr_std']:.2f} dB, "
              f"SSIM {row['val_ssim']:.3f} +- {row['val_ssim_std']:.3f}"
              + ("  [fewer than 3 seeds: the +- is no spread]" if len(rs) < 3 else ""))
    return rows


def seed_counts(rows: list) -> str:
    """How many seeds each preset's error bar is over ("3", or "1-3" when presets differ). Counted per
    preset: a merged study's run list holds every preset's seeds (2 presets x 3 seeds are 3 seeds, not 6)."""
    n = sorted({len(r["seeds"]) for r in rows})
    return str(n[0]) if len(n) == 1 else f"{n[0]}-{n[-1]}"


def merge(out: Path, parts: list) -> int:
    """Combine the runs of several studies (e.g. one process per seed) into one scaling.json/png."""
    blobs = [json.loads((Path(p) / "scaling.json").read_text()) for p in parts]
    runs = [r for b in blobs for r in b["runs"]]
    rows = summarise(runs)
    for r in rows:  # per-frame timings: the first study that timed this preset (if any did)
        r.update(next((b["per_frame"][r["preset"]] for b in blobs if r["preset"] in b.get("per_frame", {})), {}))
    args = argparse.Namespace(**{**blobs[0]["args"], "seeds": [r["seed"] for r in runs], "merged": [str(p) for p in parts]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"args": vars(args), "rows": rows, "runs": runs,
                                                  "per_frame": {k: v for b in blobs for k, v in b.get("per_frame", {}).items()},
                                                  "validation_clips": blobs[0]["validation_clips"]}, indent=2))
    _plot(out, rows, runs, args)
    print(f"wrote {out / 'scaling.json'}, {out / 'scaling.png'} and {out / 'curves.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a folder of clips (one is held out for validation)")
    ap.add_argument("--presets", nargs="*", default=["tiny", "small"], choices=list(PRESETS),
                    help="presets to train (none: only the per-frame timings of --cost-presets)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed and preset (>= 3)")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--val-every", type=int, default=0, help="validation interval (default: steps / 5)")
    ap.add_argument("--val-pairs", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--backbone-lr", type=float, default=3e-4, help="0 freezes the backbone")
    ap.add_argument("--generator", default="tiny", choices=list(PRESETS), help="preset whose generator every run uses")
    ap.add_argument("--weights-dir", default="", help="folder holding the WebSSL checkpoints as <hf-name>/ (optional)")
    ap.add_argument("--landmarker-model", default="", help="face_landmarker.task for blendshape coefficients")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--unseen-prior", type=float, default=None,
                    help="weight of the unseen-prior loss (default: LossConfig's; 0 = off, for a comparison)")
    ap.add_argument("--cost-presets", nargs="*", default=[], choices=list(PRESETS),
                    help="also time these presets untrained, each with its own generator (the avatar it deploys; "
                         "built on the CPU with a random backbone: 1.2 GB for 300m, 26 GB for 7b)")
    ap.add_argument("--out", default="runs/scaling")
    ap.add_argument("--merge", nargs="+", metavar="DIR", help="only combine the scaling.json of these studies into --out")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    if args.merge:
        return merge(out, args.merge)
    out.mkdir(parents=True, exist_ok=True)
    if not args.data:
        ap.error("--data is required (unless --merge)")
    gen = PRESETS[args.generator].to_dict()["generator"]
    data = {"root": args.data, "cache_dir": str(out / "cache"), "max_frames": args.max_frames,
            "cache_resolution": max(128, args.resolution), "landmarker_model": args.landmarker_model,
            "val_pairs": args.val_pairs}
    index = prepare_dataset(DataConfig(**data))  # once: every run reads the same index and split
    train_entries, val_entries = index.split(DataConfig(**data))
    print(f"data: {len(train_entries)} training clips, validation on {[Path(e.source).name for e in val_entries]}")
    val_every = args.val_every or max(1, args.steps // 5)
    runs, models = [], {}
    for name in args.presets:
        weights = ""
        if args.weights_dir and name in WEBSSL_PUBLISHED:
            weights = str(Path(args.weights_dir) / WEBSSL_PUBLISHED[name][0].split("/")[1])
        for seed in args.seeds:
            cfg = config_from_dict({
                "preset": name, "model": {"generator": gen}, "backbone_weights": weights, "seed": seed,
                "device": args.device, "out_dir": str(out / f"{name}-seed{seed}"), "num_workers": 0,
                "log_every": max(1, args.steps // 10), "image_every": 0, "checkpoint_every": 0, "val_every": val_every,
                "data": data, **({"loss": {"unseen_prior": args.unseen_prior}} if args.unseen_prior is not None else {}),
                "stages": [{"name": "study", "steps": args.steps, "resolution": args.resolution,
                            "batch_size": args.batch_size, "lr": args.lr, "backbone_lr": args.backbone_lr,
                            "trainable_blocks": -1 if args.backbone_lr > 0 else 0,
                            "warmup_steps": max(1, args.steps // 10)}]})
            t0 = time.time()
            res = train(cfg)
            val = res["validation"]
            model = res["model"].cpu()
            models.setdefault(name, model)
            run = {"preset": name, "seed": seed, "backbone_params": count_parameters(model.backbone),
                   "params": count_parameters(model), "seconds": time.time() - t0,
                   "train_loss": [v for _, v in res["history"]], "validation": [{"step": s, **v} for s, v in val]}
            runs.append(run)
            first, last = val[0][1], val[-1][1]
            print(f"{name:6s} seed {seed}: validation loss {first['loss']:.4f} -> {last['loss']:.4f} (image terms "
                  f"{_metric(first, 'image'):.4f} -> {_metric(last, 'image'):.4f})  PSNR "
                  f"{first['psnr']:.2f} -> {last['psnr']:.2f} dB  SSIM {first['ssim']:.3f} -> {last['ssim']:.3f}  "
                  f"({run['seconds']:.0f} s)", flush=True)
    rows = summarise(runs)
    from gaussian_head_ros.core.model.rar import RARConfig, RARModel, preset_config
    from gaussian_head_ros.core.reconstruct.template import template_faces

    clips = [index.open(e) for e in train_entries[:1]]
    ref = np.median(clips[0].vertices, axis=0)
    for name in args.cost_presets:  # the trained runs share the pinned generator; these deploy their own
        pc = RARConfig.from_dict({**preset_config(name).to_dict(), "source_size": args.resolution})
        models[f"{name} (own generator, untrained)"] = RARModel(pc, ref, template_faces())
    costs = per_frame_cost(models, clips) if models else {}
    for r in rows:
        r.update(costs[r["preset"]])
    print("cost (median of round-robin timings on this machine's CPU): once per photo, then per frame")
    for name, c in costs.items():
        print(f"  {name:6s} backbone {count_parameters(models[name].backbone) / 1e6:9.2f} M  reconstruct "
              f"{c['reconstruct_ms']:.1f} ms | basis {c['basis_ms']:.3f} ms ({c['basis_macs']} MACs)  drive "
              f"{c['drive_ms']:.2f} ms ({c['gaussians']} Gaussians)")
    (out / "scaling.json").write_text(json.dumps({"args": vars(args), "rows": rows, "runs": runs, "per_frame": costs,
                                                  "validation_clips": [e.source for e in val_entries]}, indent=2))
    if not rows:
        return 0
    _plot(out, rows, runs, args)
    print(f"wrote {out / 'scaling.json'}, {out / 'scaling.png'} and {out / 'curves.png'}")
    return 0


def _plot(out: Path, rows: list, runs: list, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    x = [r["backbone_params"] for r in rows]
    for ax, k, label in zip(axes, ("image", "psnr", "ssim"),
                            ("validation loss (image terms)", "validation PSNR (dB)", "validation SSIM")):
        ax.errorbar(x, [r[f"val_{k}"] for r in rows], yerr=[r[f"val_{k}_std"] for r in rows], fmt="o-", capsize=4)
        for r in rows:
            ax.annotate(r["preset"], (r["backbone_params"], r[f"val_{k}"]), textcoords="offset points", xytext=(4, 4))
        ax.set_xscale("log")
        ax.set_xlabel("backbone parameters")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"RAR scaling: held-out clip, {args.steps} steps at {args.resolution} px, mean +- std over "
                 f"{seed_counts(rows)} seeds, same data and avatar size")
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        ax.plot([v["step"] for v in r["validation"]], [_metric(v, "image") for v in r["validation"]], "o-",
                label=f"{r['preset']} seed {r['seed']}")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss, image terms (held-out clip)")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)


if __name__ == "__main__":
    sys.exit(main())
