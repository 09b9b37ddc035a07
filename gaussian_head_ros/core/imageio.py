"""Decode raw or compressed images from untrusted sources into RGB uint8, with reasons on failure.

The nodes hand over the fields of sensor_msgs/Image (or CompressedImage bytes); nothing here knows
about ROS. Every failure is a ValueError whose message says what was wrong.
"""

from __future__ import annotations

import cv2
import numpy as np

# encoding -> (channels, numpy dtype, conversion to RGB or None)
_ENCODINGS = {
    "rgb8": (3, np.uint8, None),
    "bgr8": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2RGB),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "8UC3": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "8UC4": (4, np.uint8, cv2.COLOR_BGRA2RGB),
    "rgb16": (3, np.uint16, None),
    "bgr16": (3, np.uint16, cv2.COLOR_BGR2RGB),
    "rgba16": (4, np.uint16, cv2.COLOR_RGBA2RGB),
    "bgra16": (4, np.uint16, cv2.COLOR_BGRA2RGB),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2RGB),
    "16UC1": (1, np.uint16, cv2.COLOR_GRAY2RGB),
    "yuv422": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "yuyv": (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
    "yuv422_yuy2": (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
}

SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


def decode_raw(data: bytes | memoryview, width: int, height: int, step: int, encoding: str,
               is_bigendian: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """The fields of a raw image -> [H, W, 3] uint8 RGB. 16-bit images are scaled to 8 bits."""
    enc = (encoding or "").strip()
    if enc not in _ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}; use one of {', '.join(SUPPORTED_ENCODINGS)}")
    if width <= 0 or height <= 0:
        raise ValueError(f"empty image ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ValueError(f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}")
    ch, dtype, conv = _ENCODINGS[enc]
    if ch == 2 and width % 2:
        raise ValueError(f"{enc} images need an even width (two pixels share their colour), got {width}")
    itemsize = np.dtype(dtype).itemsize
    row = width * ch * itemsize
    if step < row:
        raise ValueError(f"image step {step} is shorter than a row of {width} {enc} pixels ({row} bytes)")
    if len(data) < step * height:
        raise ValueError(f"image data has {len(data)} bytes, expected {step} x {height} = {step * height}")
    buf = np.frombuffer(data, np.uint8, count=step * height).reshape(height, step)[:, :row]
    img = np.ascontiguousarray(buf).view(np.dtype(dtype).newbyteorder(">" if is_bigendian else "<"))
    img = img.reshape(height, width, ch).astype(dtype) if ch > 1 else img.reshape(height, width)
    if dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if ch == 2:
        img = img.reshape(height, width, 2)
    out = img if conv is None else cv2.cvtColor(img, conv)
    return np.ascontiguousarray(out, np.uint8)


def decode_compressed(data: bytes | memoryview, max_pixels: int | None = None) -> np.ndarray:
    """JPEG/PNG/... bytes -> [H, W, 3] uint8 RGB. Checks the size before decoding the pixels."""
    raw = np.frombuffer(data, np.uint8)
    if raw.size == 0:
        raise ValueError("empty compressed image")
    if max_pixels is not None:
        w, h = _peek_size(bytes(raw[:65536]))
        if w and h and w * h > max_pixels:
            raise ValueError(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ValueError("could not decode the compressed image (corrupt, truncated or not an image)")
    if max_pixels is not None and img.shape[0] * img.shape[1] > max_pixels:
        raise ValueError(f"image is {img.shape[1]}x{img.shape[0]}, above the limit of {max_pixels} pixels")
    return to_rgb8(img, bgr=True)


def to_rgb8(img: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any decoded OpenCV/numpy image (gray, colour, alpha, 16-bit) -> [H, W, 3] uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    if img.shape[2] == 3:
        return np.ascontiguousarray(img[..., ::-1] if bgr else img)
    raise ValueError(f"images with {img.shape[2]} channels are not supported")


def read_image(path: str, max_pixels: int | None = None) -> np.ndarray:
    """A photo file -> [H, W, 3] uint8 RGB, with a clear error for missing or unreadable files."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e
    return decode_compressed(data, max_pixels=max_pixels)


def _peek_size(head: bytes) -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header without decoding; (0, 0) when unknown."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(head):
            if head[i] != 0xFF:
                i += 1
                continue
            marker = head[i + 1]
            seg = int.from_bytes(head[i + 2:i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                return int.from_bytes(head[i + 7:i + 9], "big"), int.from_bytes(head[i + 5:i + 7], "big")
            i += 2 + seg
    return 0, 0
