"""The living-face table: every clip in self-reenactment and every portrait x clip in cross-reenactment,
measured by `gaussian-head eval` (core/evaluate.py), summarised and checked against issue 11's acceptance.

Pairs (from a data folder laid out as ../shared/data): `self:<clip>` = the clip's frame 0 as the photo,
with the image metrics (PSNR, ...); `cross:<portrait>:<clip>` = a portrait driven by the clip, no
ground truth (reader, holes, identity only). One pair = one JSON object (the eval metrics plus `pair`,
`kind`, `video`, `photo`, or `error` when the pair failed).

Amplitude and order: beside each reader group's r_<group>, slope_<group> (core/reader.py: the render's
least-squares slope against the driver's series; 1 = the operator's amplitude) and rank_<group> (Spearman's
rank correlation: the render rises whenever the driver does, however bent the curve). Pair files written before
these existed get them from their kept reader series (`with_slopes`).

Summary: per metric the mean over the pairs that have it (None values are left out: a correlation is None
when the driver hardly moves, see core/reader.py), over all pairs and per kind; for the correlations also
the mean over the pairs whose driver clearly moves in that respect (MOVING_STD); and for each ACCEPTANCE
rule the pairs that miss it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIP_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
PHOTO_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
READER_GROUPS = ("jaw", "blink", "gaze_h", "gaze_v", "brow", "smile", "pucker")


@dataclass(frozen=True)
class Pair:
    """One row of the living-face table: a driving clip, and the portrait it drives (self: the clip's
    own frame 0; cross: another photo)."""

    name: str  # "self:lp_d0" or "cross:obama_official:lp_d0"
    kind: str  # "self" or "cross"
    video: str  # path of the driving clip
    photo: str | None  # path of the portrait (None: the clip's frame 0)


def pairs(data_dir: str | Path) -> list[Pair]:
    """Every clip of <data>/driving in self-reenactment, then every <data>/portraits photo x clip."""
    d = Path(data_dir)
    clips = sorted(p for p in (d / "driving").glob("*") if p.suffix.lower() in CLIP_EXTS)
    photos = sorted(p for p in (d / "portraits").glob("*") if p.suffix.lower() in PHOTO_EXTS)
    if not clips:
        raise ValueError(f"no driving clips in {d / 'driving'}")
    out = [Pair(f"self:{c.stem}", "self", str(c), None) for c in clips]
    out += [Pair(f"cross:{p.stem}:{c.stem}", "cross", str(c), str(p)) for p in photos for c in clips]
    return out


# Issue 11's acceptance. (metric, rule, threshold): "mean>=" applies to the mean over all pairs,
# "each>=" / "each<=" / "each<" to every pair that has the metric.
ACCEPTANCE = [
    ("r_jaw", "mean>=", 0.90), ("r_jaw", "each>=", 0.80),
    ("r_blink", "mean>=", 0.90), ("r_gaze_h", "mean>=", 0.70), ("r_gaze_v", "mean>=", 0.80),
    ("r_brow", "mean>=", 0.85), ("r_smile", "mean>=", 0.85),
    ("r_yaw", "mean>=", 0.97), ("r_pitch", "mean>=", 0.97),
    ("holes_p95_px512", "each<=", 5.0), ("holes_max_px512", "each<", 50.0),
    ("psnr_frame0", "each>=", 35.0),
]
PSNR_GAIN_DB = 2.0  # self PSNR must beat the baseline's by this much on every clip
# A second mean, over the pairs whose driver clearly moves in that respect (a real blink, gaze shift, head
# turn), because a clip without blinks still has an r_blink (of small eyelid drifts); not an acceptance rule.
MOVING_STD, MOVING_STD_DEG = 0.05, 2.0  # driver std of a blendshape group / a head angle (degrees)


def _moving(row: dict, key: str) -> bool:
    if not key.startswith("r_"):
        return True
    name = key[2:]
    std = _num(row.get(f"std_{name}")) if f"std_{name}" in row else _num(row.get(f"std_{name}_deg"))
    if std is None:
        return name not in READER_GROUPS and f"std_{name}_deg" not in row  # unknown amplitude: keep
    return std >= (MOVING_STD if name in READER_GROUPS else MOVING_STD_DEG)


def with_slopes(row: dict) -> dict:
    """A pair result with slope_<group> and rank_<group> filled in from its `reader_series` when it has the
    series but not those (a result written before they were measured); otherwise the row as it is."""
    ser = row.get("reader_series")
    keys = [f"{m}_{g}" for m in ("slope", "rank") for g in READER_GROUPS]
    if not ser or all(k in row for k in keys):
        return row
    from gaussian_head_ros.core.reader import ReaderSeries, compare

    m = compare(ReaderSeries.from_json(ser["driver"]), ReaderSeries.from_json(ser["render"]))
    return {**row, **{k: m[k] for k in keys if k not in row}}


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def mean_over(rows: list[dict], key: str) -> float | None:
    """The mean of the rows' finite numbers under `key` (rows without one, or with text, None, NaN or a bool there
    are left out), rounded to 4 places; None when no row has one."""
    v = [x for x in (_num(r.get(key)) for r in rows) if x is not None]
    return round(float(np.mean(v)), 4) if v else None


def summarize(rows: list[dict], baseline: list[dict] | None = None) -> dict:
    """Pair results -> {"means": {all/self/cross: {metric: mean}}, "misses": [rule text + pairs],
    "errors": [pair names]}. With a baseline (pair results of an earlier run), also the self PSNR gain."""
    ok = [r for r in rows if "error" not in r]
    keys = sorted({k for r in ok for k, v in r.items() if _num(v) is not None})
    means = {kind: {k: mean_over([r for r in ok if kind == "all" or r.get("kind") == kind], k) for k in keys}
             for kind in ("all", "self", "cross")}
    moving = {kind: {k: mean_over([r for r in ok if (kind == "all" or r.get("kind") == kind) and _moving(r, k)], k)
                     for k in keys if k.startswith("r_")} for kind in ("all", "self", "cross")}
    misses = []
    for key, rule, thr in ACCEPTANCE:
        have = [r for r in ok if _num(r.get(key)) is not None]
        if not have:
            misses.append({"rule": f"{key} {rule} {thr}", "status": "not measured", "pairs": []})
            continue
        if rule == "mean>=":
            m = means["all"][key]
            bad = [] if m >= thr else [f"mean {m}"]
            low = [f"{r['pair']} ({r[key]})" for r in have if r[key] < thr]
            misses.append({"rule": f"{key} {rule} {thr}", "status": "met" if not bad else "missed",
                           "value": m, "pairs_below": low})
            continue
        fail = {"each>=": lambda x: x < thr, "each<=": lambda x: x > thr, "each<": lambda x: x >= thr}[rule]
        bad = [f"{r['pair']} ({r[key]})" for r in have if fail(r[key])]
        misses.append({"rule": f"{key} {rule} {thr}", "status": "missed" if bad else "met", "pairs": bad})
    if baseline:
        base = {r["pair"]: r for r in baseline if "error" not in r}
        bad = []
        for r in ok:
            b = base.get(r["pair"], {})
            if r.get("kind") == "self" and _num(r.get("psnr")) is not None and _num(b.get("psnr")) is not None:
                if r["psnr"] < b["psnr"] + PSNR_GAIN_DB:
                    bad.append(f"{r['pair']} ({b['psnr']} -> {r['psnr']})")
        misses.append({"rule": f"psnr >= baseline + {PSNR_GAIN_DB} dB (self)", "status": "missed" if bad else "met",
                       "pairs": bad})
    return {"means": means, "means_driver_moves": moving, "acceptance": misses, "errors": [r["pair"] for r in rows if "error" in r]}


COLUMNS = [("psnr", "PSNR"), ("psnr_frame0", "PSNR f0"), ("psnr_plate", "PSNR plate"), ("psnr_frame0_plate", "f0 plate"),
           *[(f"r_{g}", g) for g in READER_GROUPS],
           ("r_yaw", "yaw r"), ("r_pitch", "pitch r"), ("r_roll", "roll r"), ("mae_yaw_deg", "yaw err°"),
           ("mae_pitch_deg", "pitch err°"), ("holes_mean_px512", "holes mean"), ("holes_p95_px512", "holes p95"),
           ("holes_max_px512", "holes max"), ("sface_cos_render_photo", "SFace cos"),
           ("no_face_render", "no face (render)"), ("reader_frames", "frames")]
SLOPE_COLUMNS = [(f"slope_{g}", f"{g} slope") for g in READER_GROUPS]
RANK_COLUMNS = [(f"rank_{g}", f"{g} rank") for g in READER_GROUPS]


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def to_markdown(rows: list[dict], summary: dict, header: str = "", baseline: dict | None = None) -> str:
    """Pair results + their summary -> Markdown: one table per kind with a mean row, then acceptance; with
    a baseline summary (an earlier `summarize`), first a table of the means then and now."""
    out = [header] if header else []
    if baseline:
        out += ["\n### means over pairs: baseline -> now\n", "| metric | " + " | ".join(
            f"{k} baseline | {k} now" for k in ("self", "cross", "all")) + " |", "|---" * 7 + "|"]
        for key, title in COLUMNS[:-2] + SLOPE_COLUMNS + RANK_COLUMNS:
            cells = []
            for kind in ("self", "cross", "all"):
                cells += [_cell(baseline["means"][kind].get(key)), _cell(summary["means"][kind].get(key))]
            out.append(f"| {title} | " + " | ".join(cells) + " |")
    for kind in ("self", "cross"):
        rs = [r for r in rows if r.get("kind") == kind]
        if not rs:
            continue
        cols = [(k, t) for k, t in COLUMNS if any(_num(r.get(k)) is not None for r in rs)]
        out += [f"\n### {kind}-reenactment ({len(rs)} pairs)\n",
                "| pair | " + " | ".join(t for _, t in cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for r in rs:
            if "error" in r:
                out.append(f"| {r['pair']} | error: {str(r['error'])[:120]} |")
            else:
                out.append(f"| {r['pair']} | " + " | ".join(_cell(r.get(k)) for k, _ in cols) + " |")
        out.append("| **mean** | " + " | ".join(_cell(summary["means"][kind].get(k)) for k, _ in cols) + " |")
        mv = summary.get("means_driver_moves", {}).get(kind, {})
        out.append("| mean, driver moves | " + " | ".join(_cell(mv.get(k)) if k.startswith("r_") else ""
                                                          for k, _ in cols) + " |")
        cols = [(k, t) for k, t in SLOPE_COLUMNS + RANK_COLUMNS if any(_num(r.get(k)) is not None for r in rs)]
        if cols:
            out += [f"\n{kind}-reenactment amplitude and order: slope of the render's reader series against the "
                    "driver's (1 = the operator's amplitude) and Spearman's rank correlation (1 = rises whenever "
                    "the driver's does, however bent; – = driver too still)\n",
                    "| pair | " + " | ".join(t for _, t in cols) + " |", "|---" * (len(cols) + 1) + "|"]
            out += [f"| {r['pair']} | " + " | ".join(_cell(r.get(k)) for k, _ in cols) + " |"
                    for r in rs if "error" not in r]
            out.append("| **mean** | " + " | ".join(_cell(summary["means"][kind].get(k)) for k, _ in cols) + " |")
    out.append("\n### acceptance (issue 11), over all pairs\n")
    for m in summary["acceptance"]:
        detail = m.get("pairs") or m.get("pairs_below") or []
        val = f" (mean {m['value']})" if "value" in m else ""
        out.append(f"- {m['rule']}: **{m['status']}**{val}" + (f"; below: {', '.join(detail)}" if detail else ""))
    if summary["errors"]:
        out.append(f"- pairs that failed: {', '.join(summary['errors'])}")
    return "\n".join(out) + "\n"
