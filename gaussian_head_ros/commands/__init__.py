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
            bounds = f"within {lo:g}..{hi:g}" if hi is not None else f"at least {lo:g}"
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


# file name endings OpenCV's VideoWriter writes with the mp4v codec (checked: .webm and anything else fail to open)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")


def video_output(text: str) -> str:
    """An argparse `type` for a video file to write: its name ends in one of VIDEO_SUFFIXES (any case), else
    argparse's one-line usage error naming the option (`-o me.txt` failed after the whole drive as "cannot write
    video me.txt (OpenCV has no mp4v encoder?)", with OpenCV's own assertion text on stderr)."""
    if text and not text.lower().endswith(VIDEO_SUFFIXES):  # '': not given (eval's default)
        raise argparse.ArgumentTypeError(f"must be a video file name ending in {', '.join(VIDEO_SUFFIXES)}, got {text!r}")
    return text
