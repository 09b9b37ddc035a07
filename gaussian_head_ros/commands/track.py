"""`gaussian-head track VIDEO -o CONTROLS.jsonl`: per-frame head pose and expression of a video (or webcam)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time

log = logging.getLogger(__name__)

# the options that fill a TrackerConfig setting -> that setting's name (core/tracking.py; tracker_node's parameter)
SETTING_OPTIONS = {"--max-faces": "max_faces", "--neutral-frames": "neutral_frames", "--neutral-window": "neutral_window_s",
                   "--min-cutoff": "filter_min_cutoff", "--beta": "filter_beta", "--d-cutoff": "filter_d_cutoff",
                   "--fov": "fov_deg"}


def add_arguments(p):
    p.add_argument("video", help="video file (mp4, avi, ...) or a webcam: 0, /dev/video0")
    p.add_argument("-o", "--output", required=True, help="JSON Lines file: one FaceControl object per frame ('-' = "
                                                         "stdout; its directory is made when missing)")
    p.add_argument("--model", default="", help="MediaPipe FaceLandmarker .task file: adds the 52 ARKit blendshapes "
                                               "(default: the face mesh bundled with mediapipe, no blendshapes)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (webcams: needed)")
    p.add_argument("--neutral-frames", type=int, default=15,
                   help="frames before the operator's neutral face counts as calibrated (it keeps refining)")
    p.add_argument("--neutral-window", type=float, default=20.0,
                   help="seconds over which the neutral face forgets older frames")
    p.add_argument("--max-faces", type=int, default=2, help="faces considered per frame when picking the operator")
    p.add_argument("--no-smoothing", action="store_true", help="turn the One Euro filter off")
    p.add_argument("--min-cutoff", type=float, default=2.0, help="One Euro cutoff when still, Hz")
    p.add_argument("--beta", type=float, default=10.0, help="One Euro speed coefficient")
    p.add_argument("--d-cutoff", type=float, default=1.0, help="One Euro cutoff of the speed estimate, Hz")
    p.add_argument("--fov", type=float, default=50.0, help="field of view (degrees) of the assumed camera")


def run(args) -> int:
    from gaussian_head_ros.core.files import CONTROLS, WholeFile, check_writable, shown
    from gaussian_head_ros.core.settings import settings
    from gaussian_head_ros.core.tracking import FaceTracker, TrackerConfig, no_face_note
    from gaussian_head_ros.core.video import VideoSource, is_camera

    source_name = shown(args.video) if not is_camera(args.video) else f"camera {args.video}"
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError("--max-frames must be at least 1")
    if is_camera(args.video) and args.max_frames is None:
        raise ValueError("give --max-frames when tracking a webcam")
    config = TrackerConfig(model_path=args.model, max_faces=args.max_faces, neutral_frames=args.neutral_frames,
                           neutral_window_s=args.neutral_window,
                           smoothing=not args.no_smoothing, min_cutoff=args.min_cutoff, beta=args.beta,
                           d_cutoff=args.d_cutoff, fov_deg=args.fov)
    table = settings(TrackerConfig)
    for option, name in SETTING_OPTIONS.items():  # `--fov 0` was said as 'fov_deg must be within ...' (user48)
        try:
            table[name].check(getattr(args, option[2:].replace("-", "_")))
        except ValueError as e:
            raise ValueError(f"{option} {str(e).removeprefix(name + ' ')}") from None
    config.validate()
    if args.output != "-":  # before the video and the model are opened (WholeFile makes its directory, as reconstruct)
        check_writable(args.output, "-o/--output", example="controls.jsonl", writes=CONTROLS)
    n = found = upside_down = sideways = 0
    busy, first_ns, first_missing_s = 0.0, None, None
    whole = None if args.output == "-" else WholeFile(args.output)  # the file appears when whole (Ctrl-C: not)
    with VideoSource(args.video) as src, FaceTracker(config) as tracker, whole or contextlib.nullcontext():
        with (whole.writing("w") if whole else contextlib.nullcontext(sys.stdout)) as out:
            for frame in src:
                t0 = time.perf_counter()
                control = tracker.process(frame.rgb, frame.stamp_ns)
                busy += time.perf_counter() - t0
                if control is None:  # not newer than the previous frame
                    continue
                out.write(json.dumps(control.to_json(), separators=(",", ":")) + "\n")
                n += 1
                found += control.face_detected
                upside_down += control.face_detected and tracker.upside_down
                sideways += control.face_detected and tracker.side_turn != 0
                first_ns = frame.stamp_ns if first_ns is None else first_ns
                if not control.face_detected and first_missing_s is None:
                    first_missing_s = (frame.stamp_ns - first_ns) / 1e9
                if args.max_frames is not None and n >= args.max_frames:
                    break
        # inside `whole`: a refusal leaves no file (what was at -o before stays)
        if n == 0:
            raise ValueError(f"no frames could be read from {shown(args.video)}")
        note = no_face_note(n, found, source_name, first_missing_s)
        if found == 0:
            raise ValueError(note + (f"; {shown(args.output)} is not written" if whole else ""))
    print(f"{n} frames, face found in {found} ({100.0 * found / n:.1f}%), {1000.0 * busy / n:.1f} ms/frame"
          f"{', blendshapes from ' + args.model if args.model else ''} -> {args.output}", file=sys.stderr)
    if note:
        log.warning("%s", note)
    if upside_down:  # a camera mounted upside down: the controls make the avatar grimace (tracker_node says it too)
        log.warning("the face is upside down in %d of the %d frames with a face (%d %%) of %s: the face mesh reads it "
                    "as an upright face and these controls make the avatar grimace; turn the video half a turn",
                    upside_down, found, round(100 * upside_down / found), shown(args.video))
    if sideways:  # a camera on its side: the controls roll the avatar's head a quarter turn (tracker_node says it too)
        log.warning("the face lies on its side in %d of the %d frames with a face (%d %%) of %s: these controls roll "
                    "the avatar's head a quarter turn; turn the video upright", sideways, found,
                    round(100 * sideways / found), shown(args.video))
    return 0
