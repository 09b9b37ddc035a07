#!/usr/bin/env python3
"""Soak run: the whole pipeline for minutes on end, as separate processes over DDS, watched from outside.

reconstruction_node (a ../shared portrait as its start-up photo), video_source_node (a ../shared clip,
looping, as the operator camera), tracker_node and render_node run with the package's parameters file and
Fast DDS profile, as `gaussian-head demo` runs them. Every --interval seconds this samples each node's
resident memory (VmRSS from /proc/<pid>/status) and CPU use, and the face display's frame rate and
latency (now - stamp; the stamp is the camera frame's, so this is glass-to-glass) over the interval.

  python scripts/soak.py [--minutes 10] [--warmup 60] [--fps 30] [--size 512] [--out out/soak]

The run lasts warm-up + minutes; memory growth is measured after the warm-up (median of the first and of
the last `--window` seconds of samples). Writes OUT/soak.json (every series, the configuration, the
summary) and OUT/soak.png, keeps the nodes' logs in OUT/logs, and prints one summary line. Exit status 1
when a node crashed, memory grew by --max-growth % or more, or frames stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NODES = ("reconstruction_node", "tracker_node", "render_node", "video_source_node")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), MiB; nan when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far; nan when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="measured minutes, after the warm-up")
    p.add_argument("--warmup", type=float, default=60.0, help="warm-up seconds, not counted in memory growth")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--window", type=float, default=30.0, help="seconds of samples whose median is 'start'/'end' RSS")
    p.add_argument("--fps", type=float, default=30.0, help="render frame rate")
    p.add_argument("--size", type=int, default=512, help="face display size, pixels (square)")
    p.add_argument("--backend", default="auto", help="render backend")
    p.add_argument("--photo", default=str(SHARED / "portraits" / "obama_official.jpg"), help="operator photo")
    p.add_argument("--video", default=str(SHARED / "driving" / "lp_d18.mp4"), help="camera clip (looped)")
    p.add_argument("--out", default="out/soak", help="output directory")
    p.add_argument("--max-growth", type=float, default=5.0, help="memory growth %% counted as a failure")
    return p.parse_args(argv)


def private_graph() -> None:
    """A random domain on localhost only, with our own ROS_HOME: other runs on this machine stay apart."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    home = tempfile.mkdtemp(prefix="ghr-soak-")
    os.environ["ROS_HOME"], os.environ["ROS_LOG_DIR"] = home, os.path.join(home, "log")


class Soak:
    """The processes, the recorder and the series."""

    def __init__(self, args):
        from gaussian_head_ros.nodes.launcher import FaceDisplayRecorder, NodeProcess, node_command, package_share

        self.args = args
        share = package_share()
        os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(share / "config" / "fastdds.xml"))
        params_file = str(share / "config" / "avatar.yaml")
        self.logs = Path(args.out) / "logs"
        params = {
            "reconstruction_node": {"photo_path": str(Path(args.photo).resolve())},
            "render_node": {"width": args.size, "height": args.size, "fps": args.fps, "backend": args.backend},
            "tracker_node": {},
            "video_source_node": {"source": str(Path(args.video).resolve()), "loop": True},
        }
        self.recorder = FaceDisplayRecorder()
        self.diag = {}  # node name -> latest diagnostics values
        from diagnostic_msgs.msg import DiagnosticArray

        self.recorder.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.procs = {n: NodeProcess(n, node_command(n, params[n], params_file), self.logs) for n in NODES}
        self.series = {"t_s": [], "load1": [], "fps": [], "frames": [], "latency_p50_ms": [], "latency_p95_ms": [],
                       "max_gap_s": [], "render_ms": [], "tracker_hz": [],
                       "rss_mb": {n: [] for n in NODES}, "cpu_pct": {n: [] for n in NODES}}
        self.crashes = {}  # node -> seconds into the run when it was found dead

    def _on_diag(self, arr):
        for s in arr.status:
            self.diag[s.name.split(":")[0]] = {kv.key: kv.value for kv in s.values}

    def wait_ready(self, timeout=180.0) -> None:
        """Until frames driven by the camera arrive (avatar made, tracker calibrating, renderer warm)."""
        rec = self.recorder
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(0.0)
            if self.crashes:
                raise RuntimeError(f"{list(self.crashes)} exited during start-up; see {self.logs}")
            if rec.statuses and not rec.statuses[-1].ok:
                raise RuntimeError(f"the photo was refused: {rec.statuses[-1].message}")
            live = self.diag.get("render_node", {}).get("state") == "driven"
            if live and len(rec.stats.arrivals) > 10:
                return
            time.sleep(0.5)
        raise RuntimeError(f"no driven frames after {timeout:.0f} s; see {self.logs}")

    def _check_alive(self, t: float) -> None:
        for n, p in self.procs.items():
            if n not in self.crashes and not p.alive():
                self.crashes[n] = t
                print(f"[soak] {n} exited with {p.proc.returncode} at {t:.0f} s; see {p.log_path}", flush=True)

    def run(self) -> None:
        a, rec = self.args, self.recorder
        total = a.warmup + 60.0 * a.minutes
        t0 = time.monotonic()
        i0 = len(rec.stats.arrivals)
        cpu_prev = {n: (t0, cpu_s(p.pid)) for n, p in self.procs.items()}
        next_t = t0 + a.interval
        while time.monotonic() - t0 < total:
            time.sleep(max(0.0, next_t - time.monotonic()))
            next_t += a.interval
            now = time.monotonic()
            t = now - t0
            self._check_alive(t)
            s = rec.stats  # lists only grow (appends are atomic); take this interval's slice
            i1 = len(s.arrivals)
            arrivals, lat = s.arrivals[i0:i1], np.asarray(s.latencies_ms[i0:i1])
            i0 = i1
            se = self.series
            se["t_s"].append(round(t, 2))
            se["load1"].append(os.getloadavg()[0])
            se["frames"].append(len(arrivals))
            se["fps"].append(len(arrivals) / a.interval)
            se["latency_p50_ms"].append(float(np.percentile(lat, 50)) if lat.size else float("nan"))
            se["latency_p95_ms"].append(float(np.percentile(lat, 95)) if lat.size else float("nan"))
            se["max_gap_s"].append(float(np.max(np.diff(arrivals))) if len(arrivals) > 1 else float("nan"))
            se["render_ms"].append(_float(self.diag.get("render_node", {}).get("render_ms_mean")))
            se["tracker_hz"].append(_float(self.diag.get("tracker_node", {}).get("processed_rate_hz")))
            for n, p in self.procs.items():
                se["rss_mb"][n].append(rss_mb(p.pid))
                c = cpu_s(p.pid)
                tp, cp = cpu_prev[n]
                se["cpu_pct"][n].append(100.0 * (c - cp) / max(now - tp, 1e-6))
                cpu_prev[n] = (now, c)
            if len(se["t_s"]) % max(1, int(60 / a.interval)) == 0:
                print(f"[soak] {t / 60:4.1f} min: {se['fps'][-1]:.1f} FPS, "
                      f"latency p50 {se['latency_p50_ms'][-1]:.0f} ms, "
                      "RSS " + ", ".join(f"{n.split('_')[0]} {se['rss_mb'][n][-1]:.0f}" for n in NODES)
                      + f" MB, load {se['load1'][-1]:.2f}", flush=True)

    def close(self) -> dict:
        if getattr(self, "_closed", None) is not None:
            return self._closed
        self._closed = {}
        self.recorder.close()
        codes = {n: p.stop() for n, p in self.procs.items()}
        errors = {}
        for n, p in self.procs.items():
            text = p.log_path.read_text(errors="replace")
            errors[n] = [line for line in text.splitlines() if "[ERROR]" in line or "Traceback" in line][:20]
        self._closed = {"exit_codes": codes, "error_lines": errors}
        return self._closed

    def summary(self, shutdown: dict) -> dict:
        a, se = self.args, self.series
        t = np.asarray(se["t_s"])
        start = (t >= a.warmup) & (t < a.warmup + a.window)
        end = t > t[-1] - a.window if len(t) else t.astype(bool)
        measured = t >= a.warmup
        rss = {}
        for n in NODES:
            r = np.asarray(se["rss_mb"][n])
            r0, r1 = float(np.nanmedian(r[start])), float(np.nanmedian(r[end]))
            rss[n] = {"start_mb": round(r0, 1), "end_mb": round(r1, 1), "growth_pct": round(100 * (r1 - r0) / r0, 2),
                      "max_mb": round(float(np.nanmax(r)), 1),
                      "cpu_pct_mean": round(float(np.nanmean(np.asarray(se["cpu_pct"][n])[measured])), 1)}
        fps = np.asarray(se["fps"])[measured]
        s = self.recorder.stats
        skip = int(np.sum(np.asarray(se["frames"])[~measured]))
        lat = np.asarray(s.latencies_ms[skip:])  # the measured part of the run
        return {
            "measured_minutes": round((t[-1] - a.warmup) / 60, 2) if len(t) else 0.0,
            "rss": rss,
            "fps": {"target": a.fps, "mean": round(float(np.mean(fps)), 2), "min": round(float(np.min(fps)), 2),
                    "max": round(float(np.max(fps)), 2), "std": round(float(np.std(fps)), 2)},
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                           "p95": round(float(np.percentile(lat, 95)), 1), "max": round(float(np.max(lat)), 1)},
            "max_gap_s": round(float(np.nanmax(np.asarray(se["max_gap_s"])[measured])), 3),
            "frames": int(len(lat)),
            "load1": {"mean": round(float(np.mean(np.asarray(se["load1"])[measured])), 2),
                      "max": round(float(np.max(se["load1"])), 2)},
            "crashes": self.crashes,
            **shutdown,
        }


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def summary_line(a, s: dict) -> str:
    rss = "; ".join(f"{n.replace('_node', '')} {r['start_mb']:.0f}->{r['end_mb']:.0f} MB ({r['growth_pct']:+.1f}%)"
                    for n, r in s["rss"].items())
    f, lat = s["fps"], s["latency_ms"]
    return (f"soak {s['measured_minutes']:.1f} min (+{a.warmup:.0f} s warm-up) at {a.fps:g} fps, {a.size}px: "
            f"RSS {rss}; fps mean {f['mean']:.1f} min {f['min']:.1f} (per {a.interval:g} s); "
            f"latency p50 {lat['p50']:.0f} ms p95 {lat['p95']:.0f} ms; max gap {s['max_gap_s']:.2f} s; "
            f"crashes {len(s['crashes'])}; load avg {s['load1']['mean']:.2f} (max {s['load1']['max']:.2f})")


def plot(a, se: dict, s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(se["t_s"]) / 60
    fig, ax = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for n in NODES:
        ax[0].plot(t, se["rss_mb"][n], label=f"{n} ({s['rss'][n]['growth_pct']:+.1f}%)")
    ax[0].set_ylabel("resident memory, MiB")
    ax[0].legend(fontsize=8)
    ax[1].plot(t, se["fps"], label="face display fps")
    ax[1].axhline(a.fps, color="grey", ls=":", label=f"target {a.fps:g}")
    ax[1].set_ylabel(f"frames/s over {a.interval:g} s")
    ax[1].set_ylim(0, a.fps * 1.2)
    twin = ax[1].twinx()
    twin.plot(t, se["load1"], color="tab:red", alpha=0.5, label="load average (1 min)")
    twin.set_ylabel("load average", color="tab:red")
    ax[1].legend(loc="lower left", fontsize=8)
    ax[2].plot(t, se["latency_p50_ms"], label="p50")
    ax[2].plot(t, se["latency_p95_ms"], label="p95")
    ax[2].set_ylabel("glass-to-glass latency, ms")
    ax[2].set_xlabel("minutes")
    ax[2].legend(fontsize=8)
    for x in ax:
        x.axvspan(0, a.warmup / 60, color="grey", alpha=0.1)
        x.grid(alpha=0.3)
    fig.suptitle(summary_line(a, s), fontsize=7, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    a = parse_args(argv)
    for path, what in ((a.photo, "photo"), (a.video, "clip")):
        if not Path(path).is_file():
            print(f"[soak] {what} {path} not found", file=sys.stderr)
            return 2
    private_graph()
    import rclpy

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rclpy.init()
    soak = None
    try:
        soak = Soak(a)
        print(f"[soak] starting {', '.join(NODES)} (domain {os.environ['ROS_DOMAIN_ID']}, logs in {soak.logs})",
              flush=True)
        soak.wait_ready()
        print(f"[soak] streaming; {a.warmup:.0f} s warm-up then {a.minutes:g} min measured", flush=True)
        soak.run()
        shutdown = soak.close()
        s = soak.summary(shutdown)
    except BaseException:
        if soak is not None:
            soak.close()
        raise
    finally:
        rclpy.try_shutdown()
    line = summary_line(a, s)
    (out / "soak.json").write_text(json.dumps({"config": vars(a), "summary": s, "summary_line": line,
                                               "series": soak.series}, indent=1, default=float))
    plot(a, soak.series, s, out / "soak.png")
    print(line)
    print(f"[soak] wrote {out / 'soak.json'} and {out / 'soak.png'}")
    worst = max(r["growth_pct"] for r in s["rss"].values())
    return 1 if s["crashes"] or worst >= a.max_growth or s["fps"]["min"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
