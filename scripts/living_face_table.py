#!/usr/bin/env python3
"""The living-face table (issue 11): every ../shared clip in self-reenactment and every portrait x clip in
cross-reenactment through `gaussian-head eval`, as JSON + Markdown, with issue 11's acceptance check.

    python scripts/living_face_table.py [--out DIR] [--max-frames 100] [--jobs 2] [--only SUBSTR ...]
                                        [--baseline OLD/table.json] [--side-by-side] [--no-identity]

Worker processes (--jobs) run core.evaluate.evaluate, as `gaussian-head eval` does; a portrait is
reconstructed once and driven by every clip. Each pair's result goes to DIR/pairs/<pair>.json (written
to a temporary name, then renamed), so several invocations may share DIR (e.g. different --only) and a
rerun skips pairs already done unless --force. At the end DIR/table.json and DIR/table.md are rebuilt
from every pair file in DIR (core/living_face.py: means over pairs, acceptance, PSNR gain over
--baseline). Reader: ../shared/data/models/face_landmarker.task unless --reader. Prints figures; asserts
nothing.

Time: the full table (40 pairs, --max-frames 60, --jobs 2) took 38.6 min wall on the 2-core development
machine at load average 21-24 (shared with other work); one pair is ~15-25 s of CPU (a reconstruction,
then per frame tracking, drive + render, two reader passes, holes), so an idle 2-core machine should need
several times less (not measured idle).
"""

from __future__ import annotations

import argparse
import json
import os
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _dest(out_dir: Path, pair) -> Path:
    return out_dir / "pairs" / (pair.name.replace(":", "__") + ".json")


def run_group(photo: str | None, group: list, opts: dict) -> list[str]:
    """One worker process: the avatar of `photo` reconstructed once and driven by each pair's clip (a self
    pair reconstructs from its clip's frame 0); every pair's result written to its own file."""
    import logging
    import traceback

    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.video import VideoSource, read_frames

    logging.basicConfig(level=logging.WARNING)
    out_dir = Path(opts["out"])
    source = avatar = None
    t_rec = None
    lines = []
    for pair in group:
        t0 = time.perf_counter()
        row = {"pair": pair.name, "kind": pair.kind, "video": pair.video, "photo": pair.photo,
               "max_frames": opts["max_frames"], "stride": opts["stride"], "control_codec": opts["control_codec"]}
        try:
            if photo is not None and avatar is None:
                source = read_image(photo)
                with get_reconstructor("mesh_fit") as rec:
                    avatar = rec.reconstruct(source).avatar
                t_rec = round(time.perf_counter() - t0, 2)
            frames = read_frames(pair.video, max_frames=opts["max_frames"] or None)
            with VideoSource(pair.video) as v:
                fps = v.fps
            sbs = str(out_dir / "side_by_side" / (_dest(out_dir, pair).stem + ".mp4")) if opts["side_by_side"] else ""
            cfg = EvalConfig(max_frames=opts["max_frames"], stride=opts["stride"], image_metrics=photo is None,
                             reader_model=opts["reader"], identity=opts["identity"], side_by_side=sbs, keep_series=True,
                             fps=fps / opts["stride"], control_codec=opts["control_codec"])
            row.update(evaluate([f.rgb for f in frames], [f.stamp_ns for f in frames], source, cfg, avatar))
            if photo is not None:
                row["reconstruct_s"] = t_rec
        except Exception as e:  # noqa: BLE001 - one pair's failure is a row of the table, not the end of it
            row["error"] = f"{type(e).__name__}: {e}"
            row["traceback"] = traceback.format_exc()[-2000:]
            if photo is not None and avatar is None:  # the photo itself failed: every pair of it fails alike
                source = avatar = None
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        dest = _dest(out_dir, pair)
        tmp = dest.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(row, indent=1))
        os.replace(tmp, dest)
        lines.append(f"{pair.name}: {'error ' + row['error'] if 'error' in row else 'ok'} ({row['wall_s']} s)")
        print(lines[-1], flush=True)
    return lines


def main(argv=None) -> int:
    from gaussian_head_ros.core.living_face import pairs, summarize, to_markdown, with_slopes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="data folder with driving/ and portraits/")
    ap.add_argument("--reader", default=str(DATA / "models" / "face_landmarker.task"), help="FaceLandmarker .task")
    ap.add_argument("--out", default="out/living_face", help="output folder")
    ap.add_argument("--max-frames", type=int, default=100, help="frames per clip (0 = all)")
    ap.add_argument("--stride", type=int, default=1, help="evaluate every N-th frame")
    ap.add_argument("--jobs", type=int, default=2, help="pairs run in parallel")
    ap.add_argument("--only", nargs="*", default=[], help="run only pairs whose name contains one of these")
    ap.add_argument("--self-only", action="store_true", help="only the self-reenactment pairs")
    ap.add_argument("--baseline", help="an earlier table.json: report the self PSNR gain over it")
    ap.add_argument("--side-by-side", action="store_true", help="also write DIR/side_by_side/<pair>.mp4")
    ap.add_argument("--no-identity", action="store_true", help="skip the SFace identity similarity")
    ap.add_argument("--force", action="store_true", help="rerun pairs that already have a result")
    ap.add_argument("--control-codec", choices=("none", "dense", "compact"), default="none",
                    help="drive with the controls as a render node receives them over ROS (see gaussian-head eval "
                         "--control-codec; compact: operator bases learned as tracker_node does); none = exact")
    args = ap.parse_args(argv)
    if not Path(args.reader).is_file():
        print(f"reader model {args.reader} not found (give --reader FACE_LANDMARKER.task)", file=sys.stderr)
        return 1
    out_dir = Path(args.out)
    (out_dir / "pairs").mkdir(parents=True, exist_ok=True)
    if args.side_by_side:
        (out_dir / "side_by_side").mkdir(exist_ok=True)
    todo = [p for p in pairs(args.data) if (not args.only or any(s in p.name for s in args.only))
            and (not args.self_only or p.kind == "self")]
    todo = [p for p in todo if args.force or not _dest(out_dir, p).exists()]
    groups: dict = {}
    for p in todo:  # self pairs: one group each; cross pairs: one group per portrait (one reconstruction)
        groups.setdefault(p.photo or p.name, []).append(p)
    opts = {"out": str(out_dir), "max_frames": args.max_frames, "stride": max(1, args.stride),
            "reader": args.reader, "identity": not args.no_identity, "side_by_side": args.side_by_side,
            "control_codec": args.control_codec}
    if args.jobs > 1:
        os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one rasterizer thread per job
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = [ex.submit(run_group, g[0].photo, g, opts) for g in groups.values()]
        for f in futures:
            f.result()
    rows = [with_slopes(json.loads(f.read_text())) for f in sorted((out_dir / "pairs").glob("*.json"))]
    rows.sort(key=lambda r: (r["kind"] != "self", r["pair"]))
    base = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    if base:
        base["pairs"] = [with_slopes(r) for r in base["pairs"]]
    summary = summarize(rows, base["pairs"] if base else None)
    load = os.getloadavg()
    meta = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "max_frames": args.max_frames, "stride": args.stride, "jobs": args.jobs, "pairs_run": len(todo),
            "wall_s": round(time.perf_counter() - t0, 1), "load_avg_1_5_15": [round(x, 2) for x in load],
            "cpus": os.cpu_count(), "reader": Path(args.reader).name, "control_codec": args.control_codec}
    (out_dir / "table.json").write_text(json.dumps({"meta": meta, "summary": summary, "pairs": rows}, indent=1))
    sizes = sorted({f"max {r.get('max_frames', '?')} frames, stride {r.get('stride', '?')}" for r in rows})
    header = (f"## Living-face table\n\n`{meta['command']}`: {len(rows)} pairs ({'; '.join(sizes)}), "
              f"{args.jobs} jobs, {meta['wall_s']} s wall for {len(todo)} pairs run, "
              f"load {meta['load_avg_1_5_15']} on {meta['cpus']} CPUs; reader {meta['reader']}; "
              f"controls: {args.control_codec} (none = exact, in process). "
              "r = Pearson r driver vs render of the reader's series (– = driver too still or not measured); "
              "slope = the render's least-squares slope against the driver's series (amplitude, 1 = the same); "
              "holes in px at 512²; SFace cos = identity similarity render vs photo (not ArcFace CSIM).")
    if base:
        header += f" Baseline: {args.baseline} (its means over the same pairs)."
    names = {r["pair"] for r in rows}  # the baseline's means over the same pairs as this table's
    base_summary = summarize([r for r in base["pairs"] if r["pair"] in names]) if base else None
    (out_dir / "table.md").write_text(to_markdown(rows, summary, header, base_summary))
    print((out_dir / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
