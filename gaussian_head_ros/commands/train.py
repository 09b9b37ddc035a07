"""`gaussian-head train CONFIG`: train the learned RAR reconstructor (docs/TRAINING.md).

Multi-GPU: torchrun --nproc_per_node N -m gaussian_head_ros.cli train CONFIG
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("config", help="training config, YAML or JSON (examples: config/train_*.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoints/last.pt")
    p.add_argument("--out", dest="out_dir", help="output folder (overrides out_dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set stages.0.steps=100 --set data.root=clips/ (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="check the config and the files it names (data.root, "
                   "data.landmarker_model, backbone_weights) and print it, then stop")


def run(args) -> int:
    import json
    from dataclasses import asdict

    from gaussian_head_ros.core.train.trainer import config_problems, load_config, model_config, train

    overrides = list(args.overrides) + ([f"out_dir={args.out_dir}"] if args.out_dir else [])
    cfg = load_config(args.config, overrides)
    if args.dry_run:
        print(json.dumps({"train": asdict(cfg), "model": model_config(cfg).to_dict()}, indent=2))
        problems = config_problems(cfg)  # the files it names: training would stop on them
        if problems:
            raise ValueError("; ".join(problems))
        return 0
    result = train(cfg, resume=args.resume)
    hist = result["history"]
    if hist:  # after a --resume, 'finished 30 steps' read as a 30-step run of a 40-step config (user60)
        resumed = f", resumed at step {hist[0][0] - 1}" if hist[0][0] > 1 else ""
        log.info("finished at step %d (%d steps this run%s), loss %.4f -> %.4f; model: %s", hist[-1][0], len(hist),
                 resumed, hist[0][1], hist[-1][1], result["checkpoint"])
    return 0
