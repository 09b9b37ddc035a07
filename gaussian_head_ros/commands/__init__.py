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
