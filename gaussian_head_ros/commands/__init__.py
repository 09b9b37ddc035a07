"""Subcommands of `gaussian-head` (see gaussian_head_ros/cli.py)."""

from __future__ import annotations

import argparse

IMAGE_SIZES = (16, 4096)  # [px] smallest and largest square image `bench` and `render` draw (render_node: width, height)


def int_range(lo: int, hi: int | None = None):
    """An argparse `type`: an integer within lo..hi (inclusive; no upper bound when hi is None), else
    argparse's one-line usage error naming the option (`--size 0`: "must be within 16..4096, got 0")."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bounds = f"within {lo}..{hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse
