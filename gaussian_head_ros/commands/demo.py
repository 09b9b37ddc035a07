"""`gaussian-head demo`: the whole pipeline through ROS 2, one process per node, recorded to an mp4."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from gaussian_head_ros.commands import IMAGE_SIZES, float_range, int_range, video_output

log = logging.getLogger(__name__)

RENDER_SETTLE_S = 1.0  # after the render node first reports the avatar: longer than its default 0.5 s cross-fade
# The demo's nodes and topics live in their own namespace: a robot's nodes on this machine and ROS domain (root
# namespace or their own) neither take the demo's avatar, controls or frames nor feed the demo theirs. Only the
# absolute /diagnostics is shared, where the demo's nodes are named '<namespace>/<node>'.
NAMESPACE = "gaussian_head_demo"
# The demo's reconstruction_node keeps no avatar cache: a demo face on disk would only be served again by a later
# demo started without a photo (and in the root namespace it would overwrite the robot's,
# $ROS_HOME/gaussian_head_ros/reconstruction_node.avatar).
RECONSTRUCTION_PARAMS = {"cache_avatar": False}


def add_arguments(p):
    p.add_argument("--photo", help="operator photo (default: the public-domain astronaut portrait bundled with scikit-image)")
    p.add_argument("--video", help="drive the avatar with this clip through the tracker (default: idle animation)")
    p.add_argument("--seconds", type=float_range(0.1), default=None,
                   help="how long to record (default: the clip's length, or 8 s of idle animation)")
    p.add_argument("--output", type=video_output, default="out/demo.mp4", help="where to write the face display stream (mp4)")
    p.add_argument("--backend", default="auto", help="render backend: auto, cpu, torch, gsplat")
    # checked as `gaussian-head render` checks them (render_node's ranges): `--size 0` ran the demo at 512, the node's
    # refusal only in its log under --logs (user26, s26)
    p.add_argument("--size", type=int_range(*IMAGE_SIZES), default=512, help="face display size in pixels (square)")
    p.add_argument("--fps", type=float_range(1.0, 240.0), default=30.0, help="face display frame rate")
    p.add_argument("--params-file", help="parameters file (default: the package's config/avatar.yaml)")
    p.add_argument("--logs", default="out/demo-logs", help="directory for the nodes' logs")
    p.add_argument("--namespace", default=NAMESPACE,
                   help=f"ROS namespace of the demo's nodes and topics (default {NAMESPACE}: apart from a robot's "
                        "nodes on this machine; '/' puts them in the root namespace, where they would feed a robot's)")


def default_photo() -> str:
    """scikit-image's astronaut portrait (NASA, public domain), written to a temporary PNG."""
    import cv2
    from skimage import data

    path = Path(tempfile.gettempdir()) / "gaussian_head_ros_demo_astronaut.png"
    if not path.exists():
        cv2.imwrite(str(path), data.astronaut()[..., ::-1])
    return str(path)


def run(args) -> int:
    import numpy as np
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from gaussian_head_ros.nodes.launcher import (FaceDisplayRecorder, NodeProcess, discovery_off, domain_id_problem,
                                                  namespace_argument_problem, node_command, node_params_file,
                                                  package_share)
    from gaussian_head_ros.core.files import check_writable, shown
    from gaussian_head_ros.nodes.reconstruction_node import check_photo_file
    from gaussian_head_ros.core.reconstruct.base import ReconstructionError
    from gaussian_head_ros.core.video import VideoSource, check_camera, is_camera

    if problem := domain_id_problem():  # Fast DDS ended the demo itself at its recorder's node, in its own words
        raise ValueError(problem)
    if problem := namespace_argument_problem("--namespace", args.namespace):  # rclpy's traceback, at the recorder
        raise ValueError(problem.replace(":=", " ", 1))
    check_writable(args.output, "--output", example="demo.mp4",  # before any node starts
                   reads={"--video": args.video, "--photo": args.photo})

    # keep the demo on this machine; OFF would keep its nodes, processes of their own, from finding each other (the
    # demo waited 300 s for the avatar's status, then ended in a RuntimeError; user48)
    if discovery_off():
        print("[demo] ROS_AUTOMATIC_DISCOVERY_RANGE=OFF would keep the demo's nodes from finding each other: they run "
              "with LOCALHOST")
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    share = package_share()
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(share / "config" / "fastdds.xml"))
    ns = args.namespace.strip("/")
    photo = args.photo or default_photo()
    # missing, empty, cut short or no image: said before any node starts, as `ros2 param set ... photo_path` says it
    # (a text file named .jpg started the nodes and was refused by them 15-50 s later)
    check_photo_file(photo)
    seconds = args.seconds
    if args.video and is_camera(args.video):  # as video_source_node says it; the demo started its nodes and ended 76 s
        check_camera(args.video)  # later in 'RuntimeError: the clip's controls did not reach the render node' (user48)
    if args.video and not is_camera(args.video):
        # opened as video_source_node will: missing, a directory, not a video say so here in one line (a file that
        # is no video went on to 'RuntimeError: the clip's controls did not reach the render node', a traceback)
        with VideoSource(args.video) as src:
            if seconds is None:
                seconds = src.frame_count / src.fps if src.frame_count else 10.0
    seconds = seconds or 8.0

    # its `render_node:` keys bound to the nodes in any namespace (else rcl applies them in the root namespace only)
    params_file = node_params_file(args.params_file or str(share / "config" / "avatar.yaml"), {})
    logs = Path(args.logs)
    procs = []
    # rclpy's own SIGINT / SIGTERM handlers would shut its context down under the recorder (a traceback from its spin
    # thread; after a SIGTERM the demo recorded on to --seconds and wrote the cut video as whole; user48): the signals
    # stay the command's (cli.main: Ctrl-C exit 130, SIGTERM 143), and the finally below stops the nodes
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    recorder = None
    finished = False  # the recording ran to its end: its video is kept (an interrupted one: the previous file stays)
    try:
        print(f"[demo] photo: {photo}")
        print(f"[demo] nodes and topics in the namespace /{ns}: watch /{ns}/face_display/image_raw" if ns else
              "[demo] nodes and topics in the root namespace: a robot's nodes on this machine and domain see them")
        procs.append(NodeProcess("reconstruction_node", node_command(
            "reconstruction_node", {"photo_path": photo, **RECONSTRUCTION_PARAMS}, params_file, namespace=ns), logs))
        procs.append(NodeProcess("render_node", node_command(
            "render_node", {"backend": args.backend, "width": args.size, "height": args.size, "fps": args.fps},
            params_file, namespace=ns), logs))
        if args.video:  # loads its model meanwhile
            procs.append(NodeProcess("tracker_node", node_command("tracker_node", {}, params_file, namespace=ns), logs))
        recorder = FaceDisplayRecorder(video_path=args.output, fps=args.fps, namespace=ns)
        recorder.recording = False  # not the placeholder frames shown while the avatar is made
        t0 = time.monotonic()
        if not recorder.wait_for(lambda: recorder.statuses, 300):
            raise RuntimeError(f"no avatar status after 300 s; see {logs}/reconstruction_node.log")
        st = recorder.statuses[-1]
        if not st.ok:  # named as `reconstruct` names it: 'the photo was refused: no face found ...' told no file (cli63)
            raise ReconstructionError(st.code, st.message).naming(shown(photo))
        print(f"[demo] avatar: {st.num_gaussians} Gaussians, reconstructed in {st.duration_s:.2f} s"
              + (f" ({'; '.join(st.warnings)})" if st.warnings else ""))

        def state(node: str) -> str:  # (diagnostics name the nodes '<namespace>/<node>')
            return recorder.node_states.get(f"{ns}/{node}" if ns else node, {}).get("state", "")

        # The render node shows the avatar once its renderer is warm (the first run compiles the CPU kernels).
        if not recorder.wait_for(lambda: state("render_node") in ("idle animation", "driven", "easing"), 300):
            raise RuntimeError(f"the render node did not show the avatar within 300 s; see {logs}/render_node.log")
        time.sleep(RENDER_SETTLE_S)  # the cross-fade from the placeholder ends
        if args.video:
            if not recorder.wait_for(lambda: state("tracker_node") not in ("", "starting"), 120):
                raise RuntimeError(f"the tracker did not start within 120 s; see {logs}/tracker_node.log")
            procs.append(NodeProcess("video_source_node", node_command(
                "video_source_node", {"source": str(Path(args.video).resolve()), "loop": True}, params_file,
                namespace=ns), logs))
            print(f"[demo] driving with {args.video} through the tracker")
            # The clip loops: the recording is one clip length of driven frames (it may start mid-clip).
            if not recorder.wait_for(lambda: state("render_node") == "driven", 60):
                raise RuntimeError(f"the clip's controls did not reach the render node; see {logs}/")
        else:
            print("[demo] no video given: the render node plays its idle animation")
        recorder.recording = True
        recorder.reset()
        t_rec = time.monotonic()
        while time.monotonic() - t_rec < seconds:
            for p in procs:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited; see {p.log_path}")
            time.sleep(0.2)
        stats = recorder.stats
        n = len(stats.arrivals)
        if n == 0:
            raise RuntimeError(f"no rendered frames arrived; see {logs}/render_node.log")
        if recorder.video_error:
            raise RuntimeError(f"the face display stream was not recorded: {recorder.video_error}")
        lat = np.array(stats.latencies_ms)
        kind = "glass-to-glass (camera stamp -> rendered frame received)" if args.video else "render -> received"
        print(f"[demo] {n} frames in {seconds:.1f} s: {stats.fps():.1f} FPS (target {args.fps:g}); "
              f"latency {kind}: p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms")
        finished = True
        print(f"[demo] total {time.monotonic() - t0:.1f} s; video written to {args.output}; node logs in {logs}/")
        return 0
    finally:
        if recorder is not None:
            recorder.close(keep_video=finished)
        for p in reversed(procs):
            p.stop()
        rclpy.try_shutdown()
