#!/usr/bin/env python3
"""What the compact FaceControl costs: every ../shared clip tracked once; the clip's frame-0 avatar (mesh_fit)
driven by the tracker's own control (dense, in-process: float32 expression, landmarks, exact eyelid ratios)
and by the message the render node gets with the tracker's defaults (the compact code CODEC_COMPACT, i.e.
CODEC_LAPLACIAN_V5, with the eyelid ratios, no landmarks; control_to_msg -> serialize -> msg_to_control exactly
as the nodes do),
both rendered through the tracker's camera (core.evaluate.render_control, cpu rasterizer).

Prints per clip: serialized bytes per message and kB/s at 30 fps (dense with landmarks, dense, compact),
landmark RMS compact vs dense (mm), PSNR between the two renders (mean and worst frame, whole 512 frame),
and with --reader the living-face reader correlations (FaceLandmarker on the clip vs on each render) for
both and their largest difference, next to the difference that +-1/255 noise on the dense renders makes
(the reader's own sensitivity). The compact codes carry the operator expression basis (core/operator_basis.py)
as --operator-basis says (heldout, the default: learned on the clip's frames after the rendered ones; causal:
as tracker_node, over the first --basis-s of calibrated frames, used from then on; none); each clip's line
says which. Writes side-by-side PNGs (dense | compact | |difference| x 10) of each
clip's worst frame to --out.

  python scripts/bench_control_codec.py [--max-frames 60] [--reader ../shared/data/models/face_landmarker.task]
        [--out out/codec] [--json out/codec/codec.json] [--clips a.mp4 b.mp4]
        [--operator-basis heldout|causal|none] [--basis-s 10]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
READER_GROUPS = ("jaw", "blink", "gaze_h", "gaze_v", "brow", "smile", "pucker", "yaw", "pitch", "roll")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def run_clip(clip: Path, a) -> dict:
    import cv2
    import dataclasses

    from rclpy.serialization import deserialize_message, serialize_message

    from gaussian_head_ros.core import expression_codec as ec
    from gaussian_head_ros.core.drive import Driver
    from gaussian_head_ros.core.evaluate import EvalConfig, render_control
    from gaussian_head_ros.core import landmarks as lmk
    from gaussian_head_ros.core import operator_basis as ob
    from gaussian_head_ros.core.facemesh import default_intrinsics
    from gaussian_head_ros.core.reconstruct import get_reconstructor
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig
    from gaussian_head_ros.core.video import read_frames
    from gaussian_head_ros.msg import FaceControl as FaceControlMsg
    from gaussian_head_ros.nodes.conversions import control_to_msg, msg_to_control

    frames = read_frames(str(clip), max_frames=a.max_frames)
    rgbs = [f.rgb for f in frames]
    fov = EvalConfig().fov_deg
    with get_reconstructor("mesh_fit") as rec:
        avatar = rec.reconstruct(rgbs[0]).avatar
    driver = Driver(avatar)
    h, w = rgbs[0].shape[:2]
    K = default_intrinsics(w, h, fov)
    sizes = {"dense_with_landmarks": [], "dense": [], "compact": []}
    err2, psnrs, worst = [], [], (np.inf, None)
    readers = None
    if a.reader:
        from gaussian_head_ros.core.reader import ReaderComparison

        # a third reader sees the dense renders with +-1/255 noise (PSNR ~ 53 dB): how much an r moves for
        # an invisible change, the reference for the dense-vs-compact difference
        readers = (ReaderComparison(a.reader), ReaderComparison(a.reader), ReaderComparison(a.reader))
        rng = np.random.default_rng(0)
    # the whole clip tracked once (the tracker's frames), then the operator basis learned as --operator-basis says
    tracked = []  # (frame index, rgb, control, calibrated)
    all_frames = read_frames(str(clip)) if a.operator_basis == "heldout" else frames
    with FaceTracker(TrackerConfig(fov_deg=fov)) as tracker:
        for i, f in enumerate(all_frames):
            c = tracker.process(f.rgb, (i + 1) * 40_000_000, K)
            if c is not None and c.face_detected:
                tracked.append((i, f.rgb, c, tracker.calibrated))
    basis_from = {}  # frame index -> the basis the tracker sends its code with
    if a.operator_basis == "heldout":  # learned on the clip's frames after the rendered ones, used on all of them
        held = [c for i, _, c, cal in tracked if i >= len(rgbs) and cal]
        basis = ob.learn(np.stack([ec.residual(c.expression, c.eyelid_ratios) for c in held]),
                         ob.NUM_COMPONENTS) if len(held) >= ob.NUM_COMPONENTS else None
        basis_note = f"held out: learned on {len(held)} calibrated frames after the {len(rgbs)} rendered ones"
        basis_from = {i: basis for i, *_ in tracked}
    elif a.operator_basis == "causal":  # as tracker_node: growing windows + a growing residual, each basis
        causal = ob.CausalBasis(first_s=a.basis_s, delay_s=a.switch_delay_s)  # used switch_delay_s later
        for i, _, c, cal in tracked:
            basis_from[i] = causal.step(c.expression, c.eyelid_ratios, c.stamp_ns)
        first = min((i for i, b in basis_from.items() if b is not None), default=None)
        basis_note = (f"causal as tracker_node (first window {a.basis_s:g} s of frames with a face, switch "
                      f"{a.switch_delay_s:g} s after due): {len(causal.switches)} bases ("
                      + ", ".join(f"{r} -> frame {next((i for i, b in basis_from.items() if b is bb), '-')}"
                                  for _, bb, r in causal.switches) + f"), first used from frame {first}")
    elif a.operator_basis == "causal-once":  # the earlier rule: one basis over the first --basis-s, used after it
        current, t0, frames_in = None, None, []
        for i, _, c, cal in tracked:
            basis_from[i] = current
            if cal and current is None:
                t0 = c.stamp_ns if t0 is None else t0
                frames_in.append(ec.residual(c.expression, c.eyelid_ratios))
                if (c.stamp_ns - t0) * 1e-9 >= a.basis_s and len(frames_in) >= ob.NUM_COMPONENTS:
                    current = ob.learn(np.stack(frames_in), ob.NUM_COMPONENTS)
        first = min((i for i, b in basis_from.items() if b is not None), default=None)
        basis_note = f"causal once over the first {a.basis_s:g} s of calibrated frames, used from frame {first}"
    else:
        basis_note = "none (fixed basis only)"
    psnr_with, frame_rows = [], []  # (frame, PSNR dB, landmark RMS mm, basis id) per rendered frame
    for i, rgb, c, _ in tracked:
        if i >= len(rgbs):
            break
        stamp = c.stamp_ns
        sizes["dense_with_landmarks"].append(len(serialize_message(control_to_msg(c))))
        sent = dataclasses.replace(c, landmarks=np.zeros((0, 3), np.float32))  # send_landmarks false
        op = basis_from.get(i)
        m_dense, m_compact = control_to_msg(sent, ec.CODEC_DENSE), control_to_msg(sent, ec.CODEC_COMPACT, op)
        sizes["dense"].append(len(serialize_message(m_dense)))
        wire = serialize_message(m_compact)
        sizes["compact"].append(len(wire))
        dense, compact = c, msg_to_control(deserialize_message(wire, FaceControlMsg), op)
        err2.append(((compact.expression - dense.expression) ** 2).sum(-1))
        img_d = render_control(driver, dense, K, w, h).image
        img_c = render_control(driver, compact, K, w, h).image
        p = psnr(np.clip(img_d, 0, 1), np.clip(img_c, 0, 1))
        psnrs.append(p)
        frame_rows.append((i, p, float(np.sqrt(err2[-1][:lmk.NUM_MESH].mean()) * 1e3), op.id if op is not None else 0))
        if op is not None:
            psnr_with.append(p)
        if p < worst[0]:
            worst = (p, (i, img_d, img_c))
        if readers:
            u8 = [(np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8) for x in (img_d, img_c)]
            readers[0].add(rgb, u8[0], stamp)
            readers[1].add(rgb, u8[1], stamp)
            noisy = np.clip(u8[0].astype(np.int16) + rng.integers(-1, 2, u8[0].shape), 0, 255).astype(np.uint8)
            readers[2].add(rgb, noisy, stamp)
    out = {"clip": clip.name, "frames": len(psnrs), "operator_basis": basis_note,
           "frames_with_operator_basis": len(psnr_with),
           "psnr_min_with_operator_basis_db": float(min(psnr_with)) if psnr_with else None,
           "frames_below_40db": [r[0] for r in frame_rows if r[1] < 40.0],
           "per_frame": frame_rows}
    for k, v in sizes.items():
        out[f"bytes_{k}"] = float(np.mean(v))
        out[f"kB_s_30fps_{k}"] = float(np.mean(v)) * 30 / 1e3
    e = np.array(err2)
    out["landmark_rms_mm"] = float(np.sqrt(e.mean()) * 1e3)
    out["landmark_rms_worst_frame_mm"] = float(np.sqrt(e.mean(1)).max() * 1e3)
    finite = [p for p in psnrs if np.isfinite(p)]
    out["psnr_mean_db"] = float(np.mean(finite)) if finite else float("inf")
    out["psnr_min_db"] = float(min(psnrs))
    if readers:
        for name, rc in zip(("dense", "compact", "dense_noisy"), readers):
            s = rc.summary()
            rc.close()
            out[f"reader_{name}"] = {g: s.get(f"r_{g}") for g in READER_GROUPS}
        diffs = [abs(out["reader_dense"][g] - out["reader_compact"][g]) for g in READER_GROUPS
                 if out["reader_dense"][g] is not None and out["reader_compact"][g] is not None]
        out["reader_max_abs_diff"] = float(max(diffs)) if diffs else None
        floor = [abs(out["reader_dense"][g] - out["reader_dense_noisy"][g]) for g in READER_GROUPS
                 if out["reader_dense"][g] is not None and out["reader_dense_noisy"][g] is not None]
        out["reader_noise_floor_max_abs_diff"] = float(max(floor)) if floor else None
    if a.out and worst[1] is not None:
        i, img_d, img_c = worst[1]
        diff = np.clip(np.abs(img_d - img_c) * 10, 0, 1)
        sheet = (np.concatenate([np.clip(img_d, 0, 1), np.clip(img_c, 0, 1), diff], 1) * 255 + 0.5).astype(np.uint8)
        path = Path(a.out) / f"{clip.stem}_worst_frame{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), sheet[..., ::-1])
        out["sheet"] = str(path)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="*", default=None, help="default: every ../shared/data/driving/*.mp4")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--reader", default="", help="FaceLandmarker .task: reader correlations, dense vs compact")
    ap.add_argument("--out", default="out/codec", help="side-by-side PNGs of each clip's worst frame")
    ap.add_argument("--json", default="")
    ap.add_argument("--operator-basis", choices=("heldout", "causal", "causal-once", "none"), default="heldout",
                    help="the operator expression basis (core/operator_basis.py): heldout = learned on the clip's "
                         "calibrated frames after the rendered ones (a session's other frames of the same operator), "
                         "used on every rendered frame; causal = as tracker_node: learned over the first --basis-s "
                         "of calibrated frames, re-learned over 2, 4, 8 ... x that and when the residual grows "
                         "(core/operator_basis.CausalBasis), each used --switch-delay-s after it was due; "
                         "causal-once = the earlier rule, one basis over the first --basis-s; none = the fixed "
                         "basis only")
    ap.add_argument("--basis-s", type=float, default=0.5,
                    help="causal: the first learning window (tracker_node's operator_basis_s)")
    ap.add_argument("--switch-delay-s", type=float, default=0.3,
                    help="causal: from a basis due to codes sent with it (learning on the worker thread + "
                         "delivery of the ~45 KB basis: ~0.4 s at 1 Mbit/s)")
    a = ap.parse_args()
    clips = [Path(c) for c in a.clips] if a.clips else sorted((SHARED / "driving").glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no clips (../shared/data/driving beside the checkout, or --clips)")
    rows = []
    for clip in clips:
        r = run_clip(clip, a)
        rows.append(r)
        line = (f"{r['clip']:<34} {r['frames']:>3} frames  bytes: {r['bytes_dense_with_landmarks']:.0f} / "
                f"{r['bytes_dense']:.0f} / {r['bytes_compact']:.0f} (dense+landmarks / dense / compact), compact "
                f"{r['kB_s_30fps_compact']:.1f} kB/s at 30 fps;  landmark RMS {r['landmark_rms_mm']:.3f} mm "
                f"(worst frame {r['landmark_rms_worst_frame_mm']:.3f});  render PSNR compact vs dense mean "
                f"{r['psnr_mean_db']:.1f} dB, worst frame {r['psnr_min_db']:.1f} dB;  operator basis: {r['operator_basis']}"
                + (f" (worst of the {r['frames_with_operator_basis']} frames sent with it "
                   f"{r['psnr_min_with_operator_basis_db']:.1f} dB)" if r['frames_with_operator_basis'] else "")
                + f";  frames below 40 dB: {len(r['frames_below_40db'])} {r['frames_below_40db'][:12]}")
        if "reader_max_abs_diff" in r:
            line += (f";  reader r max |dense - compact| {r['reader_max_abs_diff']:.3f} (dense vs dense +-1/255 "
                     f"noise: {r['reader_noise_floor_max_abs_diff']:.3f})")
        print(line, flush=True)
    worst_bytes = max(r["bytes_compact"] for r in rows)
    worst_rms = max(r["landmark_rms_mm"] for r in rows)
    worst_psnr = min(r["psnr_min_db"] for r in rows)
    with_basis = [r["psnr_min_with_operator_basis_db"] for r in rows if r["frames_with_operator_basis"]]
    print(f"ACCEPTANCE (issue 15): compact FaceControl {worst_bytes:.0f} B (<= 600: "
          f"{'met' if worst_bytes <= 600 else 'NOT met'}; aim <= 300: {'met' if worst_bytes <= 300 else 'not reached'}), "
          f"{worst_bytes * 30 / 1e3:.1f} kB/s at 30 fps (<= 20: {'met' if worst_bytes * 30 <= 20e3 else 'NOT met'}); "
          f"landmark RMS worst clip {worst_rms:.3f} mm (<= 0.5: {'met' if worst_rms <= 0.5 else 'NOT met'}); "
          f"render PSNR compact vs dense worst frame {worst_psnr:.1f} dB (>= 40: "
          f"{'met' if worst_psnr >= 40 else 'NOT met'})" + (
              f"; worst frame sent with the operator basis {min(with_basis):.1f} dB" if with_basis else "")
          + f"; operator basis: {a.operator_basis}", flush=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
