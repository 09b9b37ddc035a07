"""`gaussian-head prepare CONFIG`: track and cache the training clips and write the dataset index, then stop
(docs/TRAINING.md). Resumable: complete clips are skipped. `--shard I/N` prepares every N-th clip from the
I-th, so N processes or machines can share the work; a final run without --shard writes the full index."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    p.add_argument("config", help="training config, YAML or JSON (its data: section is used)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.root=clips/ (repeatable)")
    p.add_argument("--shard", default="0/1", metavar="I/N", help="prepare only shard I of N (default 0/1: all)")


def run(args) -> int:
    from gaussian_head_ros.core.train.data import DatasetIndex, prepare_dataset
    from gaussian_head_ros.core.train.trainer import load_config

    try:
        i, n = (int(x) for x in args.shard.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        raise ValueError(f"--shard must be I/N with 0 <= I < N, got {args.shard!r}") from None
    cfg = load_config(args.config, args.overrides)
    index = prepare_dataset(cfg.data, (i, n))
    train, val = index.split(cfg.data)
    print(f"{DatasetIndex.path_for(cfg.data)}: {len(index)} clips ({len(train)} train, {len(val)} validation), "
          f"{len(index.failed)} failed")
    return 0
