"""Decode raw or compressed images from untrusted sources into RGB uint8, with reasons on failure.

The nodes hand over the fields of sensor_msgs/Image (or CompressedImage bytes); nothing here knows
about ROS. Every failure is a ValueError whose message says what was wrong. Every photo file and
compressed message goes through `decode_compressed` (Pillow): EXIF orientation applied, transparency
composited onto a neutral grey, large JPEGs decoded reduced within the pixel limit.
"""

from __future__ import annotations

import io
import logging
import errno
import os
import stat
import struct
import threading

import cv2
import numpy as np

from gaussian_head_ros.core.files import DRIVING_FILE, DRIVING_SUFFIX, HEAD_BYTES, is_ply, kind, shown, url_note

log = logging.getLogger(__name__)

# encoding -> (channels, numpy dtype, conversion to RGB (RGBA for 4 channels) or None)
_ENCODINGS = {
    "rgb8": (3, np.uint8, None),
    "bgr8": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.uint8, None),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2RGBA),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "8UC3": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "8UC4": (4, np.uint8, cv2.COLOR_BGRA2RGBA),
    "rgb16": (3, np.uint16, None),
    "bgr16": (3, np.uint16, cv2.COLOR_BGR2RGB),
    "rgba16": (4, np.uint16, None),
    "bgra16": (4, np.uint16, cv2.COLOR_BGRA2RGBA),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2RGB),
    "16UC1": (1, np.uint16, cv2.COLOR_GRAY2RGB),
    "16UC3": (3, np.uint16, cv2.COLOR_BGR2RGB),  # cv_bridge's 'passthrough' of a 16-bit colour picture (user54)
    "16UC4": (4, np.uint16, cv2.COLOR_BGRA2RGBA),
    "yuv422": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
    "yuyv": (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
    "yuv422_yuy2": (2, np.uint8, cv2.COLOR_YUV2RGB_YUYV),
    # Raw colour-filter mosaics (a camera driver's image_raw), demosaiced as cv_bridge does. sensor_msgs names the
    # 2x2 tile from the top-left pixel (rggb: R G / G B); OpenCV names it by the second row's second and third
    # pixels, so rggb is OpenCV's BG (cv_bridge's getConversionCode: bayer_rggb8 -> COLOR_BayerBG2BGR). They were
    # refused as an unsupported encoding: a camera's image_raw could not drive the tracker.
    **{f"bayer_{tile}{bits}": (1, dtype, code) for bits, dtype in (("8", np.uint8), ("16", np.uint16))
       for tile, code in (("rggb", cv2.COLOR_BayerBG2RGB), ("bggr", cv2.COLOR_BayerRG2RGB),
                          ("gbrg", cv2.COLOR_BayerGR2RGB), ("grbg", cv2.COLOR_BayerGB2RGB))},
}

SUPPORTED_ENCODINGS = tuple(_ENCODINGS)

# Encodings that do not say their channel order (sensor_msgs/image_encodings.hpp: "8UC3" is just three
# bytes), and how they are taken: OpenCV's order, as cv_bridge does.
_AMBIGUOUS = {"8UC3": "BGR", "8UC4": "BGRA", "16UC3": "BGR", "16UC4": "BGRA"}


# Depth cameras' encodings (REP 118: 16UC1 in millimetres, 32FC1 in metres): a tracker pointed at the depth topic
# of an RGB-D camera (a RealSense's .../depth/image_rect_raw beside .../color/image_raw) got pictures without a
# face, frame after frame, and said only 'no face in view' (user46, s46).
DEPTH_ENCODINGS = {"16UC1": "millimetres", "32FC1": "metres"}


def depth_hint(encoding: str) -> str:
    """What a depth encoding (DEPTH_ENCODINGS) most likely means, for a camera frame or photo in it; '' for others."""
    unit = DEPTH_ENCODINGS.get((encoding or "").strip())
    if unit is None:
        return ""
    return (f"{encoding.strip()} is how depth cameras publish depth images (REP 118, in {unit}): no face shows in "
            "one; if this topic is an RGB-D camera's depth image, read its colour image instead (e.g. "
            "camera_topic:=/camera/camera/color/image_raw); an infrared or grey camera publishes mono8 or mono16")


def encoding_note(encoding: str) -> str | None:
    """A sentence for the log when an encoding's channel order is a guess (8UC3, 8UC4, 16UC3, 16UC4) or it is a depth
    camera's (16UC1, read as a grey picture: `depth_hint`), else None."""
    if hint := depth_hint(encoding):
        return f"{hint} (its frames are read as grey pictures)"
    order = _AMBIGUOUS.get((encoding or "").strip())
    if order is None:
        return None
    bits = encoding.strip()[:-3]  # "8UC3" -> "8", "16UC4" -> "16"
    return (f"{encoding} images carry no channel order: taken as {order} (OpenCV's order, as cv_bridge does); "
            f"publish {order.lower()}{bits} or {order.lower().replace('bgr', 'rgb')}{bits} to say which")


def layout_note(width: int, step: int, encoding: str) -> str | None:
    """A sentence for the photo's status when a raw image's rows carry as much padding as one more channel per
    pixel (step >= width x (channels + 1) x sample size), else None: a 4-channel image (bgra8, rgba8) sent as a
    3-channel encoding is taken as a squeezed, colour-scrambled picture, in which a face may still be found; sent
    so, a photo made an avatar of that picture with no word about it (user13, s13). Legitimate row padding (alignment)
    is a few bytes, not a third of the row. Unknown encodings: None (decode_raw refuses them)."""
    spec = _ENCODINGS.get((encoding or "").strip())
    if spec is None or width <= 0:
        return None
    ch, dtype, _ = spec
    size = np.dtype(dtype).itemsize
    if step < width * (ch + 1) * size:
        return None
    named = " (bgra8, rgba8)" if ch == 3 else ""
    return (f"the image's rows are {step} bytes for {width} {encoding} pixels ({width * ch * size} bytes): padding "
            f"as wide as one more channel per pixel; if the pixels have more channels or wider samples, publish them "
            f"with their own encoding{named}, else the picture is read scrambled")


class EncodingNotes:
    """`encoding_note` once per encoding, and any other decoding note once (a node warns once, not at every frame)."""

    def __init__(self):
        self._said: set[str] = set()

    def first(self, encoding: str) -> str | None:
        """`encoding_note(encoding)` the first time this encoding is seen, else None (also None for an
        encoding with nothing to say)."""
        return self.once(encoding_note(encoding))

    def once(self, note: str | None) -> str | None:
        """`note` the first time it is given, else None (None stays None): a note of `decode_raw_with_notes` said
        once (the tracker's ALPHA_PADDING_NOTE for BGRx frames)."""
        if note is None or note in self._said:
            return None
        self._said.add(note)
        return note


COMPRESSED_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}  # file signatures


def _encoding_hint(enc: str, data: bytes | memoryview) -> str:
    """Why an unsupported encoding was likely given, for decode_raw's refusal ('' when no guess): another case of
    a supported one (encodings are case-sensitive: 'RGB8'), or JPEG/PNG bytes in a raw Image (encoding 'jpeg'),
    which travel as sensor_msgs/CompressedImage. Both were refused with the list alone (user13, s13)."""
    if hint := depth_hint(enc):
        return f" ({hint})"
    same = [e for e in _ENCODINGS if e.lower() == enc.lower()]
    if same:
        return f" (encodings are case-sensitive: did you mean {same[0]!r}?)"
    head = bytes(data[:8])
    kind = next((k for magic, k in COMPRESSED_MAGIC.items() if head.startswith(magic)), None)
    if kind or enc.lower() in ("jpeg", "jpg", "png"):
        what = f"the data is a {kind} file" if kind else f"{enc!r} names a compressed format"
        return f" ({what}: send compressed images as sensor_msgs/CompressedImage, on the .../compressed topic)"
    return ""


def check_raw(data: bytes | memoryview, width: int, height: int, step: int, encoding: str,
              max_pixels: int | None = None) -> str:
    """Check the fields of a raw image without decoding it (microseconds: a subscription callback may call it);
    returns its encoding, stripped. Raises ValueError saying why it cannot be decoded: empty, unsupported encoding,
    above max_pixels (pixels), an odd width of a yuv422 encoding, step (bytes) shorter than a row, or data shorter
    than step x height."""
    enc = (encoding or "").strip()
    if width <= 0 or height <= 0:  # first: an Image with every field at its default (`ros2 topic pub ... "{}"`) is
        raise ValueError(f"empty image ({width}x{height})")  # empty, not one of an unsupported encoding ''
    if enc not in _ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}{_encoding_hint(enc, data)}; use one of "
                         f"{', '.join(SUPPORTED_ENCODINGS)}")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(width, height, max_pixels)
    ch, dtype, _ = _ENCODINGS[enc]
    if ch == 2 and width % 2:
        raise ValueError(f"{enc} images need an even width (two pixels share their colour), got {width}")
    row = width * ch * np.dtype(dtype).itemsize
    if step < row:
        raise ValueError(f"image step {step} is shorter than a row of {width} {enc} pixels ({row} bytes)")
    if len(data) < step * height:
        raise ValueError(f"image data has {len(data)} bytes, expected {step} x {height} = {step * height}")
    return enc


JPEG_SOS, JPEG_EOI = b"\xff\xda", b"\xff\xd9"  # start-of-scan and end-of-image markers (ITU T.81, B.1.1.3)
PNG_HEADER_CHUNKS = 4 + 4  # length and type before a chunk's data; its CRC (4) after it
# The bytes at the end of a PNG's image data the decoder does without: the chunk's CRC (4), the zlib stream's Adler-32
# (4) and its last deflate code; measured: PNGs of the ../shared clips' frames cut up to 10 bytes short decode
PNG_TAIL = 16


def _truncation(buf: bytes) -> str | None:
    """Why JPEG or PNG bytes are cut short (the same words for every such cut: a node says each cause once), read from their markers and chunk lengths without decoding (microseconds:
    a subscription callback may call it); None when they are not, or are neither JPEG nor PNG. Only what the decoder
    refuses anyway is said here (measured with Pillow on frames of the ../shared clips cut at every length):
    - a JPEG whose marker segments (walked by their lengths: an EXIF thumbnail's markers are inside one) run past its
      bytes before its first start-of-scan (FF DA), or with no end-of-image marker (FF D9) after it: its entropy-coded
      data stops short (inside it an FF byte is always followed by 00 or a restart marker, so FF D9 there is the end).
      A JPEG whose EOI is followed by more bytes decodes: those are not looked at;
    - a PNG whose chunk lengths run past its bytes by more than PNG_TAIL before its image data (IDAT) ends: its pixels
      stop short. A PNG cut after its last IDAT (its IEND lost), or in the last PNG_TAIL bytes of it, decodes; as it
      cannot be told from the others here, a cut in the last PNG_TAIL bytes of any IDAT chunk, or in the 8 bytes of
      the chunk header after one, is not said (the decoder says it: 0.3 % of cuts with 8 KB chunks)."""
    if buf.startswith(b"\xff\xd8\xff"):
        at = 2  # the marker segments before the first scan, walked by their lengths (an EXIF thumbnail's own
        while at + 4 <= len(buf) and buf[at] == 0xFF and buf[at + 1] != JPEG_SOS[1]:  # markers are inside them)
            at += 1 if buf[at + 1] == 0xFF else 2 + int.from_bytes(buf[at + 2:at + 4], "big")  # (FF fill bytes)
        if buf[at:at + 2] == JPEG_SOS and buf.find(JPEG_EOI, at + 2) >= 0:
            return None
        if at + 2 <= len(buf) and buf[at] != 0xFF:  # no marker where one should be: not ours to judge
            return None
        return ("a JPEG cut short, with no end-of-image marker FF D9" if buf[at:at + 2] == JPEG_SOS
                else "a JPEG cut short in its header, before any image data")
    if buf.startswith(b"\x89PNG\r\n\x1a\n"):
        at, idat = 8, False
        while at + PNG_HEADER_CHUNKS <= len(buf):
            length, kind = int.from_bytes(buf[at:at + 4], "big"), buf[at + 4:at + 8]
            if kind != b"IDAT" and idat:  # the image data ended whole
                return None
            idat = idat or kind == b"IDAT"
            at += PNG_HEADER_CHUNKS + length + 4
        missing = at - len(buf)  # > 0: bytes of the last chunk begun; <= 0: cut between chunks (or in a chunk's header)
        if idat and missing <= PNG_TAIL:
            return None
        return f"a PNG cut short {'inside its image data' if idat else 'in its header, before any image data'}"
    return None


def _check_bytes(buf: bytes, fmt: str = "", name: str = "") -> None:
    """The first checks of compressed bytes (`buf`, a CompressedImage's `fmt`, the file `name` they came from, if any):
    a compressedDepth map, empty. Raises ValueError saying why."""
    if "compresseddepth" in (fmt or "").lower().replace(" ", ""):
        raise ValueError(f"a compressedDepth image (format {fmt!r}) is a depth map, not a photo; publish the "
                         "camera's colour image (jpeg or png) instead")
    if not buf:
        raise ValueError(f"{shown(name)} is empty (0 bytes)" if name else "empty compressed image")


def _check_whole(buf: bytes, name: str = "") -> None:
    """Raises ValueError when `_truncation` finds the JPEG or PNG bytes `buf` cut short."""
    cut = _truncation(buf)
    if cut:
        what = f"{shown(name)}: could not decode the photo" if name else "could not decode the compressed image"
        raise ValueError(f"{what} (corrupt, truncated or not an image: {cut})")


def check_compressed(data: bytes | memoryview, fmt: str = "", header: bool = True, name: str = "") -> None:
    """Check sensor_msgs/CompressedImage bytes (`data`, its `fmt`) or a photo file's (`name`, absolute: refused in a
    file's words, as `decode_with_format` says them) without decoding their pixels, as `check_raw` does
    a raw image's fields (a subscription callback may call it: a frame the worker never takes, a newer one replacing
    it, is still said; reconstruction_node's photo_path reply): a compressedDepth map, empty, a truncated JPEG or PNG
    (`_truncation`), bytes that are no image
    (their header read by Pillow, for bytes that start as neither a JPEG nor a PNG; `header` False leaves that read
    to the decode: a caller whose worker parses the header anyway). Raises ValueError with the text
    `decode_with_format` raises for them. What passes may still fail to decode (corrupt data inside, too large)."""
    buf = bytes(data)
    _check_bytes(buf, fmt, name)
    _check_whole(buf, name)
    if header and not buf.startswith(tuple(COMPRESSED_MAGIC)):
        try:
            _open_header(buf)
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(_not_an_image(buf, fmt, name)) from e


def decode_raw(data: bytes | memoryview, width: int, height: int, step: int, encoding: str,
               is_bigendian: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """The fields of a raw image -> [H, W, 3] uint8 RGB (`decode_raw_with_notes` without its notes)."""
    return _decode_raw(data, width, height, step, encoding, is_bigendian, max_pixels)[0]


def decode_raw_with_notes(data: bytes | memoryview, width: int, height: int, step: int, encoding: str,
                          is_bigendian: bool = False, max_pixels: int | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """The fields of a raw image -> ([H, W, 3] uint8 RGB; the notes a person should read with it: `transparency_note`'s
    sentence for an image with alpha (rgba8, bgra8, 8UC4, rgba16, bgra16) that has transparent pixels, else ()), as
    `decode_with_format` gives a photo file's or CompressedImage's: one rule for a photo however it comes. A raw
    rgba8 cut-out was composited without a word while the same PNG was said (ros35). 16-bit images are scaled to
    8 bits (the top byte, as cv_bridge's 255/65535, unless every colour sample fits in 10, 12 or 14 bits: then by that
    depth, `to_8_bits`, with `depth_note`'s sentence; 16UC1, depth in millimetres, by its top byte); images with alpha are composited onto BACKDROP_RGB (see
    `composite`); Bayer mosaics (bayer_rggb8, ..., bayer_grbg16) are demosaiced (bilinear, OpenCV). Raises ValueError
    saying why (check_raw's: empty, unsupported encoding, step or data too short, above max_pixels)."""
    rgb, alpha, bits = _decode_raw(data, width, height, step, encoding, is_bigendian, max_pixels)
    depth = (depth_note(f"the {encoding.strip()} image's", bits),)
    if alpha is not None and not alpha.any():
        return rgb, tuple(filter(None, depth + (ALPHA_PADDING_NOTE.format(encoding=encoding.strip()),)))
    note = None if alpha is None else transparency_note(alpha)
    return rgb, tuple(filter(None, depth + (note,)))


# The depths a camera's or scanner's samples may have in 16-bit words (machine-vision and infrared cameras: 10, 12 or
# 14 bits; 8-bit data copied into 16-bit words). Scaled by the top byte of 16, as cv_bridge does, a 12-bit picture was
# values 0-15, black: 'the face is dark (mean brightness 9 of 255)' and a black avatar (user54).
SAMPLE_DEPTHS = (8, 10, 12, 14)


def to_8_bits(img: np.ndarray) -> tuple[np.ndarray, int]:
    """[...] uint16 samples -> ([...] uint8, the depth taken, bits): the top 8 of the least of SAMPLE_DEPTHS that holds
    every sample, else of the 16 (the top byte, as cv_bridge scales; also for an all-zero picture)."""
    top = int(img.max()) if img.size else 0
    bits = next((b for b in SAMPLE_DEPTHS if 0 < top < (1 << b)), 16)
    return (img >> (bits - 8)).astype(np.uint8), bits


def depth_note(whose: str, bits: int) -> str | None:
    """A sentence for the log when 16-bit samples were taken as `bits`-bit data (`to_8_bits`), else None. `whose`:
    "the photo's", "the mono16 image's"."""
    if bits == 16:
        return None
    return (f"{whose} samples all fit in {bits} bits: taken as {bits}-bit data (a {bits}-bit camera's samples in 16-bit "
            f"words), scaled to 8 bits by 1/{1 << (bits - 8)}; its top 8 bits alone would make it nearly black")


# A 4-channel image whose alpha is 0 in every pixel: BGRx / RGBx (a screen grab, an X11 or V4L2 XRGB source published
# as bgra8), whose fourth byte is padding. Composited as transparency it was a flat grey frame: the tracker found no
# face in any frame and said only 'no face in view' (user46, s46). Nothing visible is ever all transparent.
ALPHA_PADDING_NOTE = ("the {encoding} image's alpha is 0 in every pixel: taken as padding (an opaque BGRx/RGBx picture), "
                      "not as a wholly transparent one; publish bgr8 or rgb8 (or alpha 255) for opaque pictures")


def _decode_raw(data, width, height, step, encoding, is_bigendian, max_pixels) -> tuple[np.ndarray, np.ndarray | None,
                                                                                       int]:
    """`decode_raw_with_notes`'s pixels: ([H, W, 3] uint8 RGB, [H, W] uint8 alpha of an image with alpha, else None,
    the depth its 16-bit colour samples were taken as (`to_8_bits`; 16 for 8-bit encodings)). An alpha of 0 in every
    pixel is padding (ALPHA_PADDING_NOTE): the colour is taken as it is."""
    enc = check_raw(data, width, height, step, encoding, max_pixels)
    ch, dtype, conv = _ENCODINGS[enc]
    row = width * ch * np.dtype(dtype).itemsize
    buf = np.frombuffer(data, np.uint8, count=step * height).reshape(height, step)[:, :row]
    img = np.ascontiguousarray(buf).view(np.dtype(dtype).newbyteorder(">" if is_bigendian else "<"))
    img = img.reshape(height, width, ch).astype(dtype) if ch > 1 else img.reshape(height, width)
    bits = 16
    if dtype == np.uint16 and ch == 4:  # the colour by its depth, the alpha by its own
        colour, bits = to_8_bits(img[..., :3])
        img = np.concatenate([colour, to_8_bits(img[..., 3:])[0]], axis=2)
    elif dtype == np.uint16 and enc in DEPTH_ENCODINGS:  # millimetres, said so (depth_hint): the top byte, no note
        img = (img >> 8).astype(np.uint8)
    elif dtype == np.uint16:
        img, bits = to_8_bits(img)
    if ch == 2:
        img = img.reshape(height, width, 2)
    out = img if conv is None else cv2.cvtColor(img, conv)
    if ch == 4:  # straight alpha, composited: the colour under transparent pixels never shows (unless all are)
        alpha = out[..., 3]
        colour = out[..., :3] if not alpha.any() else composite(out[..., :3], alpha)
        return np.ascontiguousarray(colour, np.uint8), alpha, bits
    return np.ascontiguousarray(out, np.uint8), None, bits


def decode_compressed(data: bytes | memoryview, max_pixels: int | None = None, fmt: str = "",
                      name: str = "") -> np.ndarray:
    """JPEG/PNG/WebP/TIFF/... bytes -> [H, W, 3] uint8 RGB, upright and opaque (`decode_with_format` without the
    format). Raises ValueError saying why."""
    return decode_with_format(data, max_pixels, fmt, name)[0]


def decode_with_format(data: bytes | memoryview, max_pixels: int | None = None, fmt: str = "", name: str = "",
                       said: EncodingNotes | None = None) -> tuple[np.ndarray, str, int, tuple[str, ...]]:
    """JPEG/PNG/WebP/TIFF/... bytes -> ([H, W, 3] uint8 RGB, upright and opaque; the file's format as Pillow names it,
    lower case: "jpeg", "png", "webp", ..., "" when it names none; the reduction it was decoded at: 1, or 2, 4, 8 for
    a JPEG above `max_pixels`; the notes a person should read with it, () for an opaque still image: `_animation_note`'s
    sentence for an animation, of which the first frame is decoded, and `transparency_note`'s for a photo with
    transparent pixels, in that order), the header parsed once (photo_node sends the format with the bytes; it parsed the
    header a second time for it, copying the file's bytes again).

    The one decode path for photo files and CompressedImage messages (Pillow):
    - the EXIF Orientation tag (1-8, JPEG APP1 or PNG eXIf) is applied (`PIL.ImageOps.exif_transpose`),
      so a phone photo stored sideways comes out as the camera's user saw it;
    - transparency (RGBA, LA, palette with a transparent index) is composited onto BACKDROP_RGB,
      so the colour hidden under transparent pixels never shows;
    - the colours of a photo with an embedded ICC profile other than sRGB (Display P3 of a phone, Adobe RGB of a
      camera, a CMYK print profile) are converted to sRGB (`to_srgb`);
    - 16-bit samples are scaled to 8 bits (16-bit grey by the depth its samples fit in, `to_8_bits`, with a note;
      Pillow gives 16-bit colour PNGs as 8 bits, their top byte);
    - above `max_pixels` (None: Pillow's decompression-bomb limit, 179 MP) a JPEG is decoded reduced by 2, 4 or
      8 in the decoder itself (libjpeg's DCT scaling: memory stays within the reduced size), the least reduction
      that fits; other formats, and JPEGs still above the limit at 1/8, are refused before any pixel is decoded.
    `fmt` is sensor_msgs/CompressedImage.format when there is one: depth maps of image_transport's
    compressedDepth plugin are refused with a reason that names them. `name`: the file the bytes were read from
    ('' for a message), named in the refusal of bytes that are no image.
    `said`: a stream's EncodingNotes (a compressed camera's frames), through which each line the decode logs (a JPEG
    decoded reduced, the colours converted from an ICC profile) is logged once, not at every frame.
    Raises ValueError saying why (empty, not an image, a depth map, corrupt or truncated, too large).
    """
    from PIL import Image, ImageOps

    buf = bytes(data)
    _check_bytes(buf, fmt, name)
    if max_pixels is None:  # no limit given: Pillow's own (where it refuses a decompression bomb), said our way
        max_pixels = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
    try:
        im = _open_header(buf)
    except (OSError, SyntaxError, ValueError) as e:  # Pillow: UnidentifiedImageError is an OSError
        _check_whole(buf, name)  # a JPEG or PNG cut in its header: said so
        raise ValueError(_not_an_image(buf, fmt, name)) from e
    kind, (w, h), factor = (im.format or "").lower(), im.size, 1
    animated = _animation_note(im)  # before load(): Pillow's is_animated seeks (and back to frame 0)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty image ({w}x{h})")
    if max_pixels is not None and w * h > max_pixels:
        factor = next((f for f in REDUCTIONS if -(-w // f) * -(-h // f) <= max_pixels), None)
        if im.format != "JPEG" or factor is None:
            how = (f"even decoded at 1/8 it has {-(-w // 8) * -(-h // 8)}" if im.format == "JPEG"
                   else f"only JPEG can be decoded reduced, this is {im.format}")
            raise ImageTooLarge(w, h, max_pixels, how, name)
        im.draft(None, (w // factor, h // factor))
        _say(logging.INFO, said, "%dx%d JPEG decoded at 1/%d (%dx%d) to stay within %d pixels", w, h, factor,
             *im.size, max_pixels)
    _check_whole(buf, name)  # after the header's size: a cut file above the limit is said to be above it
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)  # no copy of an upright photo (a copy was +48 MB at 12 MP)
        upright = to_srgb(im, said)
    except Image.DecompressionBombError as e:
        raise ValueError(f"image is too large to decode safely ({e})") from e
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise ValueError(f"could not decode the compressed image (corrupt, truncated or not an image: {e})") from e
    rgb, transparent = _pil_to_rgb8(upright)  # (the notes are the caller's to say: logged here, a compressed camera's
    # PNG frames with alpha put one line per frame in the tracker's log and /rosout; user47, s47)
    return rgb, kind, factor, tuple(n for n in (animated, transparent) if n)


def fitting_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest (width, height) of the same aspect ratio (rounded down) with width x height <= max_pixels (>= 1)."""
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    w = max(1, int(width * scale))
    return w, max(1, min(int(height * scale), max_pixels // w))  # the min: float rounding


class ImageTooLarge(ValueError):
    """An image of width x height pixels above the limit `max_pixels` (`how`: why it cannot be decoded reduced, or '').
    Its text is a photo's (`shrink_hint`: shrink the file, save it as JPEG, or raise max_pixels); `camera_frame` says
    it for a camera's frame."""

    def __init__(self, width: int, height: int, max_pixels: int, how: str = "", name: str = ""):
        self.width, self.height, self.max_pixels = width, height, max_pixels
        # `name`: the file, said first as every other refusal of a photo file says it (a PNG above the limit named
        # none: `reconstruct` of a folder's photos in a loop left which one to guess; cli63)
        super().__init__(f"{shown(name) + ': ' if name else ''}image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}"
                         f"{f' ({how})' if how else ''}: {shrink_hint(width, height, max_pixels)}")

    def camera_frame(self, limit: str) -> str:
        """The refusal of a camera frame this large, whose limit is the parameter `limit` (`ros2 param set` form, e.g.
        '/tracker_node max_image_pixels'): send smaller frames (at most `fitting_size`) or raise it. The photo's text
        told a tracker's user to resize a file with ImageMagick or to raise 'the nodes' max_pixels parameter', which
        the tracker does not have (user39, s39)."""
        w, h = fitting_size(self.width, self.height, self.max_pixels)
        return (f"frame is {self.width}x{self.height} = {self.width * self.height} pixels, above the limit of "
                f"{self.max_pixels}: send frames of at most {w}x{h} (the camera driver's image size; "
                f"video_source_node: max_side {max(w, h)}), or raise the limit: ros2 param set {limit} "
                f"{self.width * self.height}")


def shrink_hint(width: int, height: int, max_pixels: int) -> str:
    """What to do with a photo of width x height pixels above `max_pixels`: the size to shrink it to (`fitting_size`;
    a face needs far less: 2000 px across is plenty), how, and the other ways (save as JPEG, which is decoded reduced;
    raise the limit). A 48 MP PNG was refused saying the limit only."""
    w, h = fitting_size(width, height, max_pixels)
    return (f"shrink it to at most {w}x{h} (an image editor's resize, or ImageMagick: magick PHOTO -resize {w}x{h} "
            f"SMALLER.png; a face needs no more than ~2000 px across), save it as JPEG (decoded reduced to fit), or "
            f"raise the limit (gaussian-head reconstruct --max-pixels, the nodes' max_pixels parameter)")


def _say(level: int, said: EncodingNotes | None, fmt: str, *args) -> None:
    """Log a decode's line (`fmt % args` at `level`); with `said` (a stream's EncodingNotes) only the first time it is
    given: a compressed camera's JPEG frames carrying an ICC profile logged 'photo colours converted ...' at every
    frame, 99 lines in 12 s, in the tracker's log and /rosout (user47, s47)."""
    text = fmt % args
    if said is None or said.once(text):
        log.log(level, "%s", text)


def to_srgb(im, said: EncodingNotes | None = None):
    """A loaded PIL image (RGB, RGBA or CMYK) with an embedded ICC profile (`im.info["icc_profile"]`) -> the same
    image with its colours converted to sRGB (Little CMS through PIL.ImageCms, relative colorimetric; RGB and RGBA in
    place, CMYK into a new RGB image), the profile dropped from its info. Returned unchanged: no profile, an sRGB one
    (its description names sRGB), a profile of another colour space than the pixels', other modes, and a profile
    Little CMS cannot read (logged). Everything downstream takes pixels as sRGB (the renders, the display); a Display P3
    or Adobe RGB photo read as sRGB gave a paler, duller face (Adobe RGB skin (200, 140, 110) is sRGB (220, 141, 109):
    read as sRGB, its red was 20 levels low, its saturation 11 % low). The conversion, or a profile it cannot read, is
    logged (through `said`, a stream's EncodingNotes, once: `_say`)."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK"):
        return im
    from PIL import ImageCms

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = src.profile.xcolor_space.strip()
        name = ImageCms.getProfileDescription(src).strip()
        if "srgb" in name.lower() or space != ("CMYK" if im.mode == "CMYK" else "RGB"):
            return im
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        in_place = im.mode == out_mode
        out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode=out_mode,
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, inPlace=in_place)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as e:
        _say(logging.WARNING, said, "the photo's embedded ICC colour profile cannot be read (%s): its colours are "
             "taken as sRGB", e)
        return im
    out = im if in_place else out
    out.info.pop("icc_profile", None)
    _say(logging.INFO, said, "photo colours converted from its ICC profile %r to sRGB", name)
    return out


ANIMATED_FORMATS = ("GIF", "WEBP", "PNG")  # not MPO: a phone JPEG's extra pictures (depth, preview) are no animation


def _animation_note(im) -> str | None:
    """A sentence for a person when the image Pillow has opened (its header read, no pixel decoded) is an animation
    (an animated GIF, WebP or PNG: Pillow's `is_animated`), of which `decode_with_format` uses the first frame only,
    as a photo; None for a still image, and when the frames after the first cannot be read (the first one's decode
    says what it says). Reads the header only (and, for a GIF, the start of its second frame: Pillow's is_animated
    seeks there). An animated photo was taken without a word (user18, s18: an animated GIF and WebP gave an avatar
    of the first frame, the sender told a plain OK)."""
    try:
        if im.format not in ANIMATED_FORMATS or not getattr(im, "is_animated", False):
            return None
        frames = "" if im.format == "GIF" else f" of {im.n_frames} frames"  # (a GIF's count reads all its frames)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        return None
    kind = "PNG (APNG)" if im.format == "PNG" else im.format
    return f"an animated {kind}{frames}: only its first frame is used as the photo"


COMPRESSION_WORDS = ("jpeg", "jpg", "png", "compressed")  # in a CompressedImage.format that names a compression


def _not_an_image(buf: bytes, fmt: str = "", name: str = "") -> str:
    """Why bytes Pillow does not recognise as an image were refused, starting with the file `name` (absolute) when
    given: an avatar .ply (`files.is_ply`) or its .driving.npz (`files.kind`), with how to drive it; a HEIC photo
    (`is_heif`); another ISO-BMFF file (an `ftyp` box: an MP4 or QuickTime video, such as the .mov of an iPhone Live
    Photo); another file `files.kind` names (a controls file, a model); raw pixels sent as a CompressedImage whose
    `fmt` names a raw encoding ('rgb8', no compression named); else corrupt, truncated or not an image. The video and
    the raw pixels were refused as 'corrupt, truncated or not an image' (files20, s20), and so were an avatar .ply
    (user22, s22) and a .driving.npz given as a photo (`gaussian-head reconstruct me.driving.npz`)."""
    what = kind(buf[:HEAD_BYTES], name)
    said = f"{shown(name)} is " if name else ""
    if is_heif(buf):
        return said + "a HEIC/HEIF photo (what iPhone cameras save by default), which cannot be decoded here: convert it to JPEG or PNG"
    if is_ply(buf) or what == DRIVING_FILE:
        ply = (name[: -len(DRIVING_SUFFIX)] + ".ply" if name.endswith(DRIVING_SUFFIX) else name) or "ME.ply"
        what = ("an avatar file (.ply: `gaussian-head reconstruct`'s output or a 3DGS splat)" if is_ply(buf) else
                "an avatar's driving file (.driving.npz: what driving needs, read with the avatar .ply beside it)")
        return (f"{said}{what}, not a photo: the avatar is made already; drive it with `gaussian-head render {ply}`, "
                f"or give the .ply as a robot's reconstruction_node photo_path, which publishes it as it is; send a "
                f"photo (JPEG or PNG) to be reconstructed")
    if buf[4:8] == b"ftyp":
        return (f"{said}a video file (MP4 or QuickTime: a Live Photo's .mov?), not a photo: give a still photo (JPEG or "
                "PNG), or play the video as the camera (video_source_node)")
    if what is not None and not what.endswith(("photo", "image")):  # a controls file, a model, an archive (a photo's
        # magic on bytes Pillow cannot open: a corrupt or truncated one, said below)
        return f"{said}{what}, not a photo: give a photo (JPEG or PNG) of one person, face visible"
    words = (fmt or "").lower().replace(";", " ").split()
    raw = next((e for e in _ENCODINGS if words and words[0] == e.lower()), None)
    if raw and not any(w in (fmt or "").lower() for w in COMPRESSION_WORDS):
        return (f"the compressed image's format {fmt!r} names raw {raw} pixels, and the data is no image file: send "
                f"raw pixels as sensor_msgs/Image (topic operator/photo), JPEG or PNG bytes as CompressedImage")
    if name:
        return f"{shown(name)}: could not decode the photo (corrupt, truncated or not an image)"
    return "could not decode the compressed image (corrupt, truncated or not an image)"


# Brands of HEIF image files in an ISO-BMFF `ftyp` box (ISO/IEC 23008-12 Annex B; HEIC = HEVC-coded HEIF). Pillow
# has no HEIF decoder (AVIF, also HEIF-based, it decodes, and is never asked about here).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def is_heif(buf: bytes) -> bool:
    """True when `buf` starts with an ISO-BMFF `ftyp` box (size, 'ftyp', major brand, minor version, compatible
    brands, 4 bytes each) naming a HEIF brand: a HEIC photo of a phone. A HEIC photo sent as the operator's photo
    was refused as 'corrupt, truncated or not an image' (try8)."""
    if len(buf) < 16 or buf[4:8] != b"ftyp":
        return False
    end = min(int.from_bytes(buf[:4], "big"), len(buf), 256)
    brands = [buf[8:12]] + [buf[i:i + 4] for i in range(16, end - 3, 4)]
    return any(b in HEIF_BRANDS for b in brands)


_PILLOW_CHECK = threading.Lock()


def _open_header(buf: bytes):
    """Pillow's Image.open (which reads the header only) without its decompression-bomb check: `decode_compressed`
    applies its pixel limit itself, after the header, where a large JPEG is decoded reduced. Pillow's check refused a
    200 MP phone photo (16320x12240, above Pillow's 179 MP) before it could be decoded at 1/4, and printed a
    DecompressionBombWarning above 89 MP (user13, s13). Pillow reads its limit from a module global: it is lifted
    for this call only, under a lock."""
    from PIL import Image

    with _PILLOW_CHECK:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(buf))
        finally:
            Image.MAX_IMAGE_PIXELS = limit


REDUCTIONS = (1, 2, 4, 8)  # the scales libjpeg decodes at directly (1/1 .. 1/8)
BACKDROP_RGB = (128, 128, 128)  # neutral mid grey under transparent pixels


def composite(rgb: np.ndarray, alpha: np.ndarray, backdrop=BACKDROP_RGB) -> np.ndarray:
    """[H, W, 3] uint8 straight (not premultiplied) colour + [H, W] uint8 alpha -> [H, W, 3] uint8 over the
    backdrop: alpha * rgb + (1 - alpha) * backdrop, rounded. Opaque images come back unchanged (no copy)."""
    if alpha.min() == 255:
        return rgb
    a = alpha.astype(np.uint16)[..., None]
    bg = np.asarray(backdrop, np.uint16)
    return ((rgb.astype(np.uint16) * a + bg * (255 - a) + 127) // 255).astype(np.uint8)


def transparency_note(alpha: np.ndarray) -> str | None:
    """A sentence for the log when a photo's [H, W] uint8 alpha leaves pixels transparent (a cut-out portrait): how
    many, and that they are composited onto BACKDROP_RGB (the colour an editor left under them never shows; the person
    is segmented against the grey). None for an opaque photo. A cut-out was taken without a word, and a user could not
    tell whether its background had been read as the picture's."""
    clear, partial = int((alpha == 0).sum()), int(((alpha > 0) & (alpha < 255)).sum())
    if clear + partial == 0:
        return None
    return (f"the photo is transparent in {100.0 * clear / alpha.size:.0f} % of its pixels ({100.0 * partial / alpha.size:.0f} % "
            f"partly): composited onto mid grey {BACKDROP_RGB}, against which the person is found")


# A photo file (or CompressedImage) whose alpha is 0 in every pixel: a BGRA camera frame written with cv2.imwrite, an
# export that left the channel empty. Composited, it was flat grey, 'transparent in 100 %' and then refused as no face
# (user54), where the same pixels sent raw as bgra8 are taken as padding (ALPHA_PADDING_NOTE).
PHOTO_ALPHA_UNUSED_NOTE = ("the image's alpha is 0 in every pixel: taken as an unused channel (an opaque picture saved "
                           "with an empty alpha, as a BGRA camera frame written to PNG is), not as a wholly transparent "
                           "one; save it without alpha (or with alpha 255)")


def _pil_to_rgb8(im) -> tuple[np.ndarray, str | None]:
    """A loaded PIL image in any mode -> ([H, W, 3] uint8 RGB, transparency composited onto BACKDROP_RGB;
    `transparency_note`'s sentence when it had transparent pixels, PHOTO_ALPHA_UNUSED_NOTE when its alpha is 0 in every
    pixel (its colour taken as it is), `depth_note`'s for 16-bit grey samples of fewer bits, else None)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grey (PNG, TIFF), by its depth (to_8_bits)
        grey, note = np.asarray(im), None
        if grey.dtype != np.uint8:
            grey, bits = to_8_bits(np.clip(grey.astype(np.int64), 0, 65535).astype(np.uint16))
            note = depth_note("the photo's", bits)
        return cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_GRAY2RGB), note
    if im.mode == "F":
        return to_rgb8(np.asarray(im)), None
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        if not rgba[..., 3].any():  # an empty alpha channel, as a raw image's (_decode_raw): the colour as it is
            return np.ascontiguousarray(rgba[..., :3]), PHOTO_ALPHA_UNUSED_NOTE
        return np.ascontiguousarray(composite(rgba[..., :3], rgba[..., 3])), transparency_note(rgba[..., 3])
    if im.mode == "L":
        return cv2.cvtColor(np.ascontiguousarray(np.asarray(im)), cv2.COLOR_GRAY2RGB), None
    return _rgb_rows(im if im.mode == "RGB" else im.convert("RGB")), None


def _rgb_rows(im, strip_bytes: int = 1 << 22) -> np.ndarray:
    """An RGB PIL image -> [H, W, 3] uint8, copied a strip of rows (~4 MB) at a time. `np.asarray(im)` goes
    through `im.tobytes()`, which joins encoded chunks into one bytes object: two more full-size buffers at the
    peak (a 12 MP photo decoded from a 48 MP JPEG: +149 MiB over its 34 MiB of pixels, measured, with the
    transpose's copy; strips and the transpose in place: +80, Pillow's own 4 bytes a pixel and this array)."""
    w, h = im.size
    out = np.empty((h, w, 3), np.uint8)
    rows = max(1, strip_bytes // (3 * max(w, 1)))
    for y in range(0, h, rows):
        out[y:y + rows] = np.asarray(im.crop((0, y, w, min(h, y + rows))))
    return out


def to_rgb8(img: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any decoded OpenCV/numpy image (grey, colour, alpha; uint8, uint16 or float) -> [H, W, 3] uint8 RGB,
    alpha composited onto BACKDROP_RGB."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        rgba = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA) if bgr else img
        return np.ascontiguousarray(composite(rgba[..., :3], rgba[..., 3]))
    if img.shape[2] == 3:
        return np.ascontiguousarray(img[..., ::-1] if bgr else img)
    raise ValueError(f"images with {img.shape[2]} channels are not supported")


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """[H, W, 3] uint8 RGB -> JPEG bytes (OpenCV/libjpeg, baseline, 4:2:0). `quality` 1..100 (libjpeg's
    scale; 80 keeps a 512x512 face at ~40 KB). ValueError for another shape, dtype or quality."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"JPEG encoding needs [H, W, 3] uint8 RGB, got {rgb.dtype} {rgb.shape}")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape[1]}x{rgb.shape[0]} image as JPEG")
    return buf.tobytes()


def photo_file(path: str) -> str:
    """A photo file name as the user gave it to a node's parameter (reconstruction_node's `photo_path`,
    photo_node's `photo`), `~` expanded: `-p photo_path:=~/me.jpg` and a quoted `ros2 param set ... '~/me.jpg'`
    reach the node as they are (a shell expands `~` only at the start of a word)."""
    return os.path.expanduser(path)


def check_file(path: str) -> str:
    """The photo file `path` (`~` expanded, as `photo_file`), checked readable without reading it (a stat and an
    open: cheap whatever the file's size). Returns the expanded path. Raises ValueError 'cannot read PATH: REASON'
    with the system's reason (No such file or directory, Is a directory, Permission denied), or 'not a regular
    file' for a device or a pipe (/dev/zero never ends; a FIFO blocks its reader until someone writes): the one
    wording of reconstruction_node's `photo_path` reply, photo_node's `photo` reply and `read_image`."""
    path = photo_file(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise ValueError(f"cannot read {shown(path)}: not a regular file (a device or a pipe)")
        with open(path, "rb"):  # Permission denied
            pass
    except OSError as e:
        raise ValueError(f"cannot read {shown(path)}: {e.strerror or e}{url_note(path)}") from e
    return path


def read_file(path: str) -> bytes:
    """The bytes of the photo file `path` (`~` expanded), after `check_file` (its errors). Raises ValueError."""
    path = check_file(path)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:  # gone or changed since the check
        raise ValueError(f"cannot read {shown(path)}: {e.strerror or e}") from e


def read_image(path: str, max_pixels: int | None = None) -> np.ndarray:
    """A photo file -> [H, W, 3] uint8 RGB, upright and opaque (see `decode_compressed`), with a clear error
    for missing or unreadable files (`read_file`) and for files that are no image, naming the file and what it is
    (an avatar file: how to drive it). The decode's notes (an animation, of which the first frame is used; transparent
    pixels) are logged as warnings."""
    rgb, _, _, notes = decode_with_format(read_file(path), max_pixels=max_pixels, name=photo_file(path))
    for note in notes:
        log.warning("%s", note)
    return rgb
