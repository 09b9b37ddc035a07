"""Subcommands of `gaussian-head` (see gaussian_head_ros/cli.py)."""

from __future__ import annotations

import argparse
import math

IMAGE_SIZES = (16, 4096)  # [px] smallest and largest square image `bench` and `render` draw (render_node: width, height)


def _number_range(kind: str, convert, lo, hi):
    """An argparse `type` converting with `convert` and accepting finite values within lo..hi (inclusive; no
    upper bound when hi is None), else argparse's one-line usage error naming the option."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {text!r}") from None
        if not math.isfinite(value) or value < lo or (hi is not None and value > hi):
            def show(v):  # 400000000, not 4e+08 (reconstruct's --max-pixels)
                return str(v) if isinstance(v, int) else f"{v:g}"
            bounds = f"within {show(lo)}..{show(hi)}" if hi is not None else f"at least {show(lo)}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def int_range(lo: int, hi: int | None = None):
    """An argparse `type`: an integer within lo..hi (inclusive; no upper bound when hi is None), else
    argparse's one-line usage error naming the option (`--size 0`: "must be within 16..4096, got 0")."""
    return _number_range("integer", int, lo, hi)


def float_range(lo: float, hi: float | None = None):
    """An argparse `type`: a finite number within lo..hi (inclusive; no upper bound when hi is None), else
    argparse's one-line usage error naming the option (`--fps 0`: "must be within 1..240, got 0")."""
    return _number_range("number", float, lo, hi)


# render_node's framing and head_fill parameters as `render` and `bench` take them: (choices, default) and (low, high,
# default): core.display's FRAMINGS, HEAD_FILL_RANGE and HEAD_FILL, written out here because importing core loads
# numba (~0.7 s) and `gaussian-head --help` imports every command (test_display checks that they agree)
FRAMING_ARGS = (("head", "fov"), "head"), (0.3, 1.0, 0.9)


def framing_arguments(p, fov_view: str = "--fov") -> None:
    """Add --framing and --head-fill (core/display.py: render_node's framing and head_fill) to parser p. fov_view:
    what --framing fov draws through, as its help says it (render: its --fov option; bench, which has none: the
    30 deg view; its help named a --fov it does not take, user61)."""
    (choices, default), (lo, hi, fill) = FRAMING_ARGS
    p.add_argument("--framing", choices=choices, default=default,
                   help="head: the view sized and placed by the avatar's own head (hair and ears, turned yaw +-35, "
                        f"pitch +-20) to fill --head-fill of the frame, centred on it; fov: {fov_view} for any avatar "
                        f"(render_node's framing parameter, core/display.py; default {default})")
    p.add_argument("--head-fill", type=float_range(lo, hi), default=None,  # None: not given (framing_of)
                   help=f"with --framing head: the share of the frame (its tighter direction) the head's box fills "
                        f"({lo:g}..{hi:g}, default {fill:g})")


def framing_of(args) -> tuple[str, float]:
    """(framing, head fill) of `framing_arguments`' options, the fill's default filled in. Raises ValueError for
    --head-fill with --framing fov, where it does nothing: `render --framing fov --head-fill 0.5` drew the fov
    framing without a word about the option it left unused (cli37, s37)."""
    if args.framing == "fov" and args.head_fill is not None:
        raise ValueError(f"--head-fill {args.head_fill:g} does nothing with --framing fov (--fov sets that view); "
                         "leave out one of them")
    return args.framing, FRAMING_ARGS[1][2] if args.head_fill is None else args.head_fill


# file name endings OpenCV's VideoWriter writes with the mp4v codec (checked: .webm and anything else fail to open)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")


def video_output(text: str) -> str:
    """An argparse `type` for a video file to write: its name ends in one of VIDEO_SUFFIXES (any case), else
    argparse's one-line usage error naming the option (`-o me.txt` failed after the whole drive as "cannot write
    video me.txt (OpenCV has no mp4v encoder?)", with OpenCV's own assertion text on stderr)."""
    if text and not text.lower().endswith(VIDEO_SUFFIXES):  # '': not given (eval's default)
        raise argparse.ArgumentTypeError(f"must be a video file name ending in {', '.join(VIDEO_SUFFIXES)}, got {text!r}")
    return text


def ply_output(text: str) -> str:
    """An argparse `type` for an avatar file to write: its name ends in .ply (any case), else argparse's one-line usage
    error naming the option. `reconstruct -o me.txt` wrote a PLY named me.txt and me.txt.driving.npz beside it, which
    splat viewers do not open by that name (user26, s26)."""
    if not text.lower().endswith(".ply"):
        raise argparse.ArgumentTypeError(f"must be an avatar file name ending in .ply (me.ply), got {text!r}")
    return text
