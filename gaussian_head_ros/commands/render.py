"""`gaussian-head render`: drive an avatar with tracked controls (or the idle animation) and write a video.

    gaussian-head render me.ply --controls controls.jsonl -o me.mp4
    gaussian-head render me.ply -o idle.mp4 --seconds 5 --lighting studio

The controls file is what `gaussian-head track` writes: one FaceControl JSON object per line. One video
frame is drawn per control; the frame rate follows the controls' stamps unless --fps is given (30 FPS, with a
warning, where the stamps give a rate outside --fps's 1..240: stamps in frames or milliseconds, not nanoseconds).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import time
from pathlib import Path

from gaussian_head_ros.commands import (IMAGE_SIZES, float_range, framing_arguments, framing_of, int_range,
                                        video_output)

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # [s] the idle animation's length without --controls
FPS_RANGE = (1.0, 240.0)  # [frames/s] --fps's range (render_node's fps parameter's), also of a rate the stamps give
DEFAULT_FPS = 30.0  # [frames/s] without --fps, when the control stamps give no rate in FPS_RANGE
# core.display's FOV_DEG and DISTANCE_M (render_node's fov_deg and distance_m defaults), written out because importing
# core loads numba and `gaussian-head --help` imports every command (test_python_api checks that they agree)
FOV_DEG = 30.0  # [deg] --framing fov's field of view
DISTANCE_M = 0.6  # [m] --distance's default


def add_arguments(p):
    p.add_argument("avatar", help="avatar .ply (from `gaussian-head reconstruct`)")
    p.add_argument("--controls", help="FaceControl JSONL (from `gaussian-head track`; '-' = stdin, as `track -o -` "
                                      "writes it); default: idle animation")
    p.add_argument("-o", "--output", type=video_output, required=True, help="output video (.mp4)")
    p.add_argument("--size", type=int_range(*IMAGE_SIZES), default=512, help="frame size in pixels (square)")
    p.add_argument("--width", type=int_range(*IMAGE_SIZES), default=None,
                   help="frame width in pixels, for a display that is not square (default: --size); framed as "
                        "render_node frames it (core/display.py)")
    p.add_argument("--height", type=int_range(*IMAGE_SIZES), default=None, help="frame height in pixels (default: --size)")
    # the ranges of render_node's fps, fov_deg and distance_m parameters
    p.add_argument("--fps", type=float_range(*FPS_RANGE), default=None,
                   help=f"frame rate, {FPS_RANGE[0]:g}..{FPS_RANGE[1]:g} (default: from the control stamps, else "
                        f"{DEFAULT_FPS:g})")
    p.add_argument("--seconds", type=float_range(0.1), default=None,  # None: not given (run)
                   help=f"length of the idle animation without --controls (at least 0.1) (default: {IDLE_SECONDS})")
    p.add_argument("--backend", default="auto", help="rasterizer: auto, cpu, torch, gsplat")
    p.add_argument("--lighting", default="captured", help="captured, studio, soft, dramatic or warm")
    framing_arguments(p)
    p.add_argument("--fov", type=float_range(5.0, 120.0), default=None,  # None: not given (run)
                   help="with --framing fov: field of view across the frame's shorter side (vertical on a square or "
                        f"landscape frame), degrees (5..120) (default: {FOV_DEG})")
    p.add_argument("--distance", type=float_range(0.1, 10.0), default=DISTANCE_M,
                   help="camera distance from the head centre, metres (0.1..10): the perspective (nearer: a wider "
                        "lens, the nose and chin larger); with --framing head the head keeps its size (--head-fill "
                        "sets it), with fov farther is a smaller head")
    p.add_argument("--background", type=float_range(0.0, 1.0), nargs=3, default=(0.0, 0.0, 0.0), metavar=("R", "G", "B"),
                   help="background colour in 0..1")


USAGE = "gaussian-head render AVATAR.ply --controls CONTROLS.jsonl -o OUT.mp4"


def swapped_inputs(avatar: str, controls: str | None, output: str = "OUT.mp4") -> str | None:
    """The error for an avatar and a controls file given in each other's place (or an avatar given as both), from
    their first bytes (core.files.kind), naming each and the command in the right order (writing `output`); None when
    no avatar file is given as the controls. `render c.jsonl --controls me.ply` said "me.ply is not a text file of FaceControl JSON lines (a
    video? `gaussian-head track me.ply ...`)": a .ply is no video, and tracking it is no help."""
    from gaussian_head_ros.core.files import AVATAR_PLY, CONTROLS, DRIVING_FILE, DRIVING_SUFFIX, file_kind

    if not controls or file_kind(controls) not in (AVATAR_PLY, DRIVING_FILE):
        return None
    if file_kind(avatar) == CONTROLS:
        ply = controls[: -len(DRIVING_SUFFIX)] + ".ply" if controls.endswith(DRIVING_SUFFIX) else controls
        return (f"the avatar and the controls are swapped: {avatar} is {CONTROLS} and {controls} is an avatar file; "
                f"the avatar comes first: gaussian-head render {ply} --controls {avatar} -o {output}")
    return (f"--controls {controls} is an avatar file, not controls (FaceControl JSON lines from `gaussian-head "
            f"track`); the avatar is the first argument: {USAGE}")


def piped_controls(path: str, folder: str) -> tuple[str, str]:
    """(the file to read, the name to say in messages) of `--controls path`: a file is both; '-' (stdin, as `track -o -`
    writes the controls) or a pipe (`/dev/stdin` behind a `|`, bash's `<(gaussian-head track ...)`) is copied once
    into `folder` and said as 'stdin' or its own name. The controls are read twice (checked, then drawn) and their first
    bytes peeked at (swapped_inputs), which a pipe gives once: '-' was looked for as a file, and a piped first line was
    refused as 'Expecting value: line 1 column 1' (user48)."""
    if path != "-":
        try:
            if not stat.S_ISFIFO(os.stat(path).st_mode):  # a file, or what its reader will say it is
                return path, path
        except OSError:  # missing: said by the reader
            return path, path
    copy = os.path.join(folder, "controls.jsonl")
    with (open(path, "rb") if path != "-" else contextlib.nullcontext(sys.stdin.buffer)) as src, open(copy, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return copy, "stdin" if path == "-" else path


def controls_in(path: str, notes: tuple[dict, dict] | None = None, name: str | None = None):
    """The FaceControls of a JSONL file (what `gaussian-head track` writes), one line at a time (a generator: the
    file is never held whole). `notes`: (ignored, unknown) dicts to fill with the fields no FaceControl has and the
    blendshape names outside ARKit's 52, each with the first line naming it. Raises ValueError naming the first bad
    line (of `name`, when given: the file's name to say; else `path`), or what the file is when it is no text (a video,
    an avatar: core.files.kind); OSError when it cannot be opened."""
    from gaussian_head_ros.core.control import ARKIT_BLENDSHAPES, JSON_FIELDS, FaceControl
    from gaussian_head_ros.core.files import file_kind

    said = name or path
    try:
        with open(path, encoding="utf-8-sig") as fh:  # -sig: a BOM (Windows Notepad) was refused
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    if line.strip() == "[":  # a pretty-printed JSON array: said as "Expecting value: line 2 column 1"
                        raise ValueError("a JSON array, not one FaceControl object: one JSON object per line (JSON "
                                         "Lines)")
                    obj = json.loads(line)
                    c = FaceControl.from_json(obj)
                    c.validate()
                except (ValueError, TypeError, AttributeError) as e:
                    raise ValueError(f"{said}:{i}: not a FaceControl line ({e})") from None
                if notes is not None:
                    for key in obj.keys() - JSON_FIELDS:
                        notes[0].setdefault(key, i)
                    for name in set(c.blendshape_names).difference(ARKIT_BLENDSHAPES):
                        notes[1].setdefault(name, i)
                yield c
    except UnicodeDecodeError:  # a video or an image: said as "'utf-8' codec can't decode byte 0xae in position 51:
        what = file_kind(path)  # invalid start byte" (user26, s26)
        if what is None or what.startswith("a video"):
            raise ValueError(
                f"{said} is not a text file of FaceControl JSON lines (a video? `gaussian-head track {said} "
                f"-o controls.jsonl` tracks one; then --controls controls.jsonl)") from None
        raise ValueError(f"{said} is {what}, not a text file of FaceControl JSON lines (`gaussian-head track CLIP "
                         f"-o controls.jsonl` writes one); {USAGE}") from None


def read_controls(path: str, name: str | None = None):
    """Checks every line of a FaceControl JSONL file (`controls_in`) and returns their stamps ([N] int64 ns); warns
    about the fields no FaceControl has and the blendshape names outside ARKit's 52. The controls themselves are
    read again as the frames are drawn (`controls_in`): holding them all took 2 KB a line (a 50 MB file 1.3 GB).
    Raises ValueError as `controls_in` does, or when the file holds no controls; OSError when it cannot be opened.
    `name`: the file's name to say (controls_in)."""
    import numpy as np

    from gaussian_head_ros.core.control import JSON_FIELDS, not_arkit_names

    ignored, unknown = {}, {}
    said = name or path
    stamps = np.fromiter((c.stamp_ns for c in controls_in(path, (ignored, unknown), said)), np.int64)
    if not len(stamps):
        raise ValueError(f"{said} holds no controls")
    if ignored:  # a hand-written file's misspelt field drove nothing without a word
        log.warning("%s: ignored what no FaceControl has: %s (a FaceControl line's fields: %s)", said,
                    ", ".join(f"'{k}' (from line {i})" for k, i in sorted(ignored.items(), key=lambda kv: kv[1])),
                    ", ".join(sorted(JSON_FIELDS)))
    if unknown:  # a phone app's 'MouthSmileLeft' or a made-up 'smile' drove nothing without a word (user32, s34)
        names = sorted(unknown, key=lambda n: (unknown[n], n))
        log.warning("%s: %s", said, not_arkit_names(names, {n: f"from line {unknown[n]}" for n in names}))
    return stamps


def stamps_fps(stamps, path: str) -> float:
    """The frame rate of a controls file's stamps ([N] int64, ns): 1e9 / their median step, or DEFAULT_FPS when they
    do not rise at every line (a hand-written file's stamps all 0) or give a rate outside FPS_RANGE, either said as
    a warning naming `path`: stamps counted in frames or milliseconds, not nanoseconds (`"stamp_ns": 0, 1, 2 ...`
    made a video of 1e9 FPS, which OpenCV refused as "no mp4v encoder in this OpenCV?" after its own ERROR line;
    1 ms apart one of 1000 FPS, 30 frames in 0.03 s; user47, s47)."""
    import numpy as np

    dt = np.diff(stamps.astype(np.float64))
    if not len(dt):
        return DEFAULT_FPS
    if not np.all(dt > 0):  # no rate to take: said, as the rates outside FPS_RANGE are (a repeated stamp drew the
        # whole file at 30 FPS without a word; user47, s47)
        what = "are all the same" if not np.any(dt) else f"do not rise at {int(np.sum(dt <= 0))} of {len(dt)} lines"
        log.warning("%s: its stamps %s (no frame rate in them); drawn at %g FPS, give --fps to choose", path, what,
                    DEFAULT_FPS)
        return DEFAULT_FPS
    fps = 1e9 / float(np.median(dt))
    if FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        return fps
    why = ("stamp_ns counts nanoseconds (frame indices or milliseconds there?)" if fps > FPS_RANGE[1] else
           "slower than a frame a second")
    log.warning("%s: its stamps are %.6g s apart (%.6g FPS, outside %g..%g: %s); drawn at %g FPS, give --fps to "
                "choose", path, float(np.median(dt)) * 1e-9, fps, *FPS_RANGE, why, DEFAULT_FPS)
    return DEFAULT_FPS


def run(args) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gaussian-head-render-") as folder:  # piped controls' copy (piped_controls)
        return _render(args, folder)


def _render(args, folder: str) -> int:
    import numpy as np

    from gaussian_head_ros.core.avatar import load_ply
    from gaussian_head_ros.core.display import FaceDisplay
    from gaussian_head_ros.core.files import check_writable, shown, url_note
    from gaussian_head_ros.core.idle import IdleAnimator
    from gaussian_head_ros.core.video import VideoWriter

    # options that would do nothing, said before any work: they were dropped without a word (cli37, s37)
    if args.controls and args.seconds is not None:
        raise ValueError(f"--seconds {args.seconds:g} is the idle animation's length; with --controls the video has "
                         "one frame per control line (trim the controls file for a shorter one): leave out one of them")
    framing, head_fill = framing_of(args)
    if framing == "head" and args.fov is not None:
        raise ValueError(f"--fov {args.fov:g} does nothing with --framing head (the default: the view is sized by the "
                         "avatar's head, --head-fill): add --framing fov to set the field of view")
    if not Path(args.avatar).is_file():
        raise ValueError(f"avatar {shown(args.avatar)} not found{url_note(args.avatar)}")
    controls_file, said = piped_controls(args.controls, folder) if args.controls else (None, None)
    swapped = swapped_inputs(args.avatar, controls_file, args.output)
    if swapped:
        raise ValueError(swapped.replace(controls_file, said))
    check_writable(args.output, "-o/--output", example="me.mp4")  # before the avatar loads (VideoWriter makes its dir)
    stamps = read_controls(controls_file, said) if args.controls else None  # a bad file said before the avatar loads
    avatar = load_ply(args.avatar)
    avatar.validate()
    w, h = args.width or args.size, args.height or args.size
    # framed, lit and drawn as the render node draws it (ValueError for a lighting or a backend that cannot run here)
    display = FaceDisplay(avatar, w, h, framing=framing, head_fill=head_fill, fov_deg=args.fov or FOV_DEG,
                          distance_m=args.distance, lighting=args.lighting, background=args.background,
                          backend=args.backend)
    renderer, driver = display.renderer, display.driver
    renderer.warm_up()
    if stamps is not None:
        controls, count = controls_in(controls_file, name=said), len(stamps)  # read again as drawn: not held in memory
        fps = args.fps or stamps_fps(stamps, said)
    else:
        fps = args.fps or DEFAULT_FPS
        idle = IdleAnimator(avatar.template_vertices, rest_gaze=driver.rig.rest_gaze)
        controls = [idle.control(i / fps) for i in range(max(1, int(round((args.seconds or IDLE_SECONDS) * fps))))]
        count = len(controls)
    out = Path(args.output)
    times = []
    with VideoWriter(out, fps) as writer:
        for c in controls:
            t0 = time.perf_counter()
            rgb = display.render(c)
            times.append(time.perf_counter() - t0)
            writer.write(rgb)
    ms = 1e3 * float(np.median(times))
    size = "{}x{}".format(*writer.size)  # an odd side is one pixel less in the file: it said the size asked (user40)
    size += f" (asked {w}x{h}: the mp4v encoder takes even sides)" if writer.size != (w, h) else ""
    print(f"wrote {out}: {count} frames at {fps:.1f} FPS, {size}, {renderer.name} backend, "
          f"drive + render {ms:.1f} ms/frame (median)")
    return 0
