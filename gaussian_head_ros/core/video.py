"""Frames and timestamps from video files and webcams (OpenCV), for the tracker and a video source node.

    with VideoSource("clip.mp4") as src:
        for frame in src:                       # VideoFrame(rgb [H, W, 3] uint8, stamp_ns, index)
            ...

Stamps: for a file, the frame's presentation time (from the container, or index / fps when the
container gives none) plus `start_ns`; for a camera, the wall clock when the frame was grabbed.
With `loop=True` a file restarts at its end and stamps keep increasing (each pass is offset by the
duration of the previous ones), so a consumer never sees time run backwards; a still image file (one frame)
repeats at the nominal rate, decoded once (its one frame is kept and handed out again, a copy each time, scaled to the
max_side of the moment), decoded as a photo is (`still_image`: upright, opaque, sRGB). A file of one frame that only
OpenCV decodes (a one-frame video; an image Pillow does not know, such as Radiance .hdr or .pfm) is replayed the same
way once OpenCV has decoded its frame. A file OpenCV opens but finds no frame size in (corrupt, not a video) is
refused with ValueError, as a missing one is, and so is a file whose frames are under facemesh.MIN_IMAGE_SIDE a side
(the tracker reads none of them).

Writing: `VideoWriter(path, fps).write(rgb)` (mp4v), and `SideBySideWriter` for driver | render pairs.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import sys
import time
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from gaussian_head_ros.core.files import (AVATAR_CACHE, AVATAR_PLY, CONTROLS, DRIVING_FILE, WholeFile, check_exists,
                                          file_kind, shown)
from gaussian_head_ros.core.native_log import held_stderr

from gaussian_head_ros.core.facemesh import MIN_IMAGE_SIDE

log = logging.getLogger(__name__)


@dataclass
class VideoFrame:
    """One frame of a VideoSource."""

    rgb: np.ndarray  # [H, W, 3] uint8
    stamp_ns: int  # presentation time (files, offset by start_ns) or grab time (cameras)
    index: int  # frame number since opening (keeps counting across loops)


def is_camera(source: str | int) -> bool:
    """A webcam index (0, "0") or a device path (/dev/video0)."""
    s = str(source)
    return s.isdigit() or s.startswith("/dev/video")


def camera_absent(source: str | int) -> str:
    """Why the camera `source` (is_camera: an index N or /dev/videoN) cannot be there, or "" when its device node
    exists and may be opened. Linux only (V4L2: index N is /dev/videoN); elsewhere "". OpenCV says only that it
    could not open it, which was logged as 'unsupported format or busy device' for a camera that was not plugged
    in, or not passed to the container (user18, s18: `video:=/dev/video0` on a machine without one)."""
    if not sys.platform.startswith("linux"):
        return ""
    s = str(source)
    path = f"/dev/video{s}" if s.isdigit() else s
    if not os.path.exists(path):
        return (f"no such device {path} (is the camera plugged in? `ls /dev/video*` lists those there; in a "
                f"container, pass it in: docker run --device {path})")
    if not os.access(path, os.R_OK | os.W_OK):
        return f"no permission to open {path} (add the user to its group, usually 'video': ls -l {path})"
    return ""


def check_camera(source: str | int) -> None:
    """Raise ValueError 'cannot open camera ...: why' when the camera `source` cannot be there (camera_absent): what
    VideoSource says, and `gaussian-head demo --video /dev/video0` before it starts a node (user48)."""
    if absent := camera_absent(source):
        raise ValueError(f"cannot open camera {source!r}: {absent}")


class VideoSource:
    """A video file or a camera as an iterator of VideoFrame. Raises ValueError when it cannot be opened."""

    def __init__(self, source: str | int, loop: bool = False, start_ns: int = 0, max_side: int | None = None):
        self.source, self.loop, self.start_ns, self.max_side = source, loop, int(start_ns), max_side
        self.camera = is_camera(source)
        if self.camera:
            check_camera(source)
            dev = int(source) if str(source).isdigit() else str(source)
            self._cap = cv2.VideoCapture(dev)
        else:
            check_exists(source, "video file")
            if not os.path.isfile(str(source)):  # "(a directory?)" was said of a pipe or /dev/null too (user43, s43)
                what = "a directory" if os.path.isdir(str(source)) else "a device or a pipe"
                raise ValueError(f"video file {shown(source)} is not a file: {what}")
            image = still_image(str(source))
            if image is not None:
                self._open_still(image)
                return
            # FFmpeg's own line about a file refused here ('[png @ 0x55...] Invalid PNG signature', 'moov atom not
            # found') came before our sentence saying why (user41, user43, user45): left out, ours says it
            with held_stderr() as held:
                self._cap = cv2.VideoCapture(str(source))
                try:
                    self._check_opened()
                except ValueError:
                    held.drop_ffmpeg()
                    raise
        if self.camera:
            self._check_opened()
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 1000.0 else 30.0  # [Hz] nominal rate (30 when unknown)
        if not self.camera:
            self._refuse_small()
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if n > 0 and not self.camera else None  # None when unknown (cameras, streams)
        self._index = 0
        self.plays, self._play_start = 1, 0  # plays begun from the file's start (loops + 1), and its first frame's index
        self._offset_ns = 0  # added to file stamps on later loops
        self._last_ns = None  # the stamp of the last frame read, and of the one before it
        self._prev_ns = None
        self._first = None  # a looping file's first frame, unscaled, kept until a second frame shows it has more

    def _check_opened(self) -> None:
        """Raise ValueError saying why when OpenCV could not open the source; else set width and height [px]."""
        source = self.source
        if not self._cap.isOpened():
            raise ValueError(f"cannot open camera {source!r}: busy (another program has it open) or no video capture "
                             f"device" if self.camera else
                             f"cannot open video {shown(source)}: {unplayable_reason(str(source))}")
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if not self.camera and (self.width <= 0 or self.height <= 0):  # OpenCV "opened" a file it cannot decode
            self._cap.release()  # (a text file, a corrupt JPEG): it played as a 0x0 video that ended at once
            raise ValueError(f"cannot decode video {shown(source)}: OpenCV finds no frame size in it (corrupt, or not "
                             f"a video or image)")

    def _open_still(self, rgb: np.ndarray) -> None:
        """A still image file decoded by `still_image` ([H, W, 3] uint8 RGB): played by `_replay`."""
        self.fps, self.frame_count = STILL_FPS, None  # as OpenCV's image reader said (demo: None = plays 10 s)
        self.height, self.width = rgb.shape[:2]  # the file's size, as for a video
        self._cap = None
        self._refuse_small()
        self._index, self._offset_ns, self._last_ns, self._prev_ns, self._first = 0, 0, None, None, None
        self.plays, self._play_start = 1, 0
        self._replay(rgb)

    def _replay(self, rgb: np.ndarray) -> None:
        """From now on the source is the one frame `rgb` ([H, W, 3] uint8 RGB, unscaled), handed out again (a copy
        each time) at the nominal rate while `loop` is set, scaled to the max_side of the moment (`_still_fit`: again
        only when max_side changes): a still image file (`_open_still`) or a file of one frame OpenCV decoded
        (`read`). Decoding that file again at each frame took 87 ms for a 1920x1080 Radiance .hdr (reopened: OpenCV
        cannot seek back in an image) and 6 ms for a one-frame 1920x1080 mp4 on the 2-core machine (tidy21, s21)."""
        if self._cap is not None:
            self._cap.release()
        self._cap, self._still_full, self._still_side, self._still = None, rgb, None, None

    def _refuse_small(self) -> None:
        """Raises ValueError, with the sizes, for a file whose frames are under facemesh.MIN_IMAGE_SIDE a side: it
        played without a word and the tracker skipped every frame (user20, s20: a 1x1 PNG as video:=, /diagnostics
        'playing' at OK). Only the file's own size is checked here: max_side never scales a frame under that size
        (`_fit` keeps the shorter side at MIN_IMAGE_SIDE or more), and video_source_node refuses a max_side of
        1..MIN_IMAGE_SIDE - 1 (a longer side it could not keep)."""
        if min(self.width, self.height) < MIN_IMAGE_SIDE:
            self.close()
            raise ValueError(f"video {self.source!r} is {self.width}x{self.height}, smaller than the face tracker reads "
                             f"({MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} and more; faces are found in far larger frames)")

    def _still_fit(self) -> np.ndarray:
        """The replayed frame (`_replay`) scaled to the current max_side (cached: `_still`)."""
        if self._still is None or self._still_side != self.max_side:
            self._still, self._still_side = np.ascontiguousarray(self._fit(self._still_full)), self.max_side
        return self._still

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        """`rgb` scaled down (area) so that its longer side is at most max_side, but its shorter side never below
        facemesh.MIN_IMAGE_SIDE (unchanged without max_side). video_source_node refuses a max_side under 16, which
        bounds the longer side: a 16:9 clip at max_side 16-28 was scaled to frames 9-15 px high that the tracker
        skipped, every one (review20, s20)."""
        width, height = self._fit_size(rgb.shape[1], rgb.shape[0])
        if (width, height) != (rgb.shape[1], rgb.shape[0]):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        return rgb

    def _fit_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) [px] of a width x height frame once `_fit` has scaled it to the current max_side."""
        if self.max_side and max(width, height) > self.max_side:
            s = max(self.max_side / max(width, height), min(1.0, MIN_IMAGE_SIDE / min(width, height)))
            if s < 1.0:
                return round(width * s), round(height * s)
        return width, height

    def sent_size(self) -> tuple[int, int]:
        """(width, height) [px] of the frames `read` hands out at the current max_side: the file's or camera's own
        size (`width`, `height`) when max_side is off or above it. video_source_node's 'playing' line gave the file's
        480x480 while max_side 240 sent 240x240 (user25, s25)."""
        return self._fit_size(self.width, self.height)

    @property
    def frames_this_play(self) -> int:
        """Frames handed out since the source last began from its start (the file's frames at its end); a looping
        file begins again at each loop (`plays` counts them). video_source_node said 'end of video after 6192 frames'
        for a 516-frame file looped 12 times before `loop` was set false (user25, s25)."""
        return self._index - self._play_start

    def close(self) -> None:
        """Release the file or camera."""
        if self._cap is not None:
            self._cap.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self) -> Iterator[VideoFrame]:
        while True:
            f = self.read()
            if f is None:
                return
            yield f

    def read(self) -> VideoFrame | None:
        """The next frame, or None at the end of a file (without loop) or when a camera stops."""
        if self._cap is None:  # one frame replayed (`_replay`)
            if self._last_ns is None:  # a still image file's first frame
                return self._frame(self._still_fit().copy(), self.start_ns)
            if not self.loop:
                return None
            self._begin_play()
            return self._frame(self._still_fit().copy(), self._last_ns + int(round(1e9 / self.fps)))
        ok, bgr = self._cap.read()
        if not ok and self.loop and not self.camera and self._index > 0:
            if self._index == 1 and self._first is not None:  # a file of one frame: replayed from it (user13: it
                self._replay(self._first)  # was reopened and decoded again at each frame)
                return self.read()
            self._offset_ns = (self._last_ns or 0) - self.start_ns + int(1e9 / self.fps)
            self._begin_play()
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
            if not ok:  # a file that cannot seek back: opened again
                self._cap.release()
                self._cap = cv2.VideoCapture(str(self.source))
                ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        if self.camera:
            stamp = time.time_ns()
        else:
            pos_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            local = int(round(pos_ms * 1e6))
            stamp = self.start_ns + self._offset_ns + local
            if self._last_ns is not None and stamp <= self._last_ns:  # no usable container time: index / fps
                stamp = self._last_ns + int(round(1e9 / self.fps))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        self._first = rgb.copy() if self._index == 0 and self.loop and not self.camera else None
        return self._frame(np.ascontiguousarray(self._fit(rgb)), stamp)

    def _begin_play(self) -> None:
        """The next frame begins the file again (a loop)."""
        self.plays, self._play_start = self.plays + 1, self._index

    def play_interval_s(self, frame: VideoFrame, rate: float = 0.0) -> float:
        """[s] how long after the frame read before it `frame` (the one just read) is due when the source is played
        in real time (video_source_node's pacing): 0 for the first frame since opening; 1 / `rate` when a rate [Hz]
        is asked (rate > 0); for a file, the difference of the two frames' presentation times, so a phone video's
        variable frame rate plays at its own pace (it played every frame 1 / fps apart: the average rate OpenCV
        reports, so a 60 fps stretch in slow motion and a 15 fps one fast); 1 / fps for a camera, and when that
        difference is not within (0, MAX_FRAME_GAP_S] (a stamp from the index, not the container)."""
        if frame.index == 0 or self._prev_ns is None:
            return 0.0
        if rate > 0:
            return 1.0 / rate
        gap = (frame.stamp_ns - self._prev_ns) * 1e-9
        return gap if not self.camera and 0.0 < gap <= MAX_FRAME_GAP_S else 1.0 / self.fps

    def _frame(self, rgb: np.ndarray, stamp: int) -> VideoFrame:
        frame = VideoFrame(rgb, stamp, self._index)
        self._prev_ns, self._last_ns = self._last_ns, stamp
        self._index += 1
        return frame


MAX_FRAME_GAP_S = 1.0  # [s] the longest presentation-time gap between two frames of a file taken as its own pacing
STILL_FPS = 25.0  # [Hz] a still image file's nominal rate (what OpenCV's image reader reported for one)


def _iso_bmff_boxes(path: str, limit: int = 4096) -> tuple[list[str], bool] | None:
    """The top-level box types of an ISO base media file (MP4, MOV, M4V, 3GP: ISO/IEC 14496-12 section 4.2; each box
    a 32-bit big-endian size, its 4-character type, a 64-bit size when the first is 1, to the file's end when 0)
    and whether the last box runs past the end of the file (cut off); None when the file does not start with an
    'ftyp' box (not ISO BMFF). Reads only the boxes' headers, at most `limit` of them."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8 or head[4:8] != b"ftyp":
                return None
            types, pos = [], 0
            while pos + 8 <= size and len(types) < limit:
                f.seek(pos)
                h = f.read(16)
                n, kind = struct.unpack(">I", h[:4])[0], h[4:8].decode("latin-1")
                header = 8
                if n == 1:
                    if len(h) < 16:
                        return types + [kind], True
                    n, header = struct.unpack(">Q", h[8:16])[0], 16
                elif n == 0:
                    n = size - pos
                if n < header:  # a broken size: nothing more can be read in order
                    return types + [kind], True
                types.append(kind)
                if pos + n > size:
                    return types, True
                pos += n
            return types, pos < size and pos + 8 > size
    except OSError:
        return None


def unplayable_reason(path: str) -> str:
    """Why OpenCV's FFmpeg could not open the video file `path` (which exists), for a person: an empty file; an
    MP4 / MOV whose index (its 'moov' box) is missing or cut off, as a recording stopped before it was finished or a
    copy broken off leaves it (FFmpeg says only 'moov atom not found'); otherwise a format it cannot play (not a
    video, or a codec this OpenCV build lacks). Reads the file's box headers only."""
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty (0 bytes)"
    except OSError as e:
        return f"cannot read it ({e.strerror})"
    boxes = _iso_bmff_boxes(path)
    if boxes is not None:
        types, cut = boxes
        if "moov" not in types:
            return ("an MP4/MOV file without its index (no 'moov' box" + (", the file ends inside a box" if cut else "")
                    + "): the recording was stopped, or the file copied, before it was finished; record or copy it "
                    "again (a file cut off this way cannot be played)")
        if cut:
            return "an MP4/MOV file cut off before its end (its last box runs past the end of the file)"
        return "an MP4/MOV file whose tracks this OpenCV build cannot decode (codec not supported)"
    what = file_kind(path)  # one of the package's own files given as the camera: said as what it is (user47, s47)
    if what in (AVATAR_PLY, DRIVING_FILE, AVATAR_CACHE):
        return (f"it is {what}, not a video: a robot shows an avatar file as its reconstruction_node's photo_path "
                "(robot.launch.py photo:=me.ply); the camera is a video file, a still photo or /dev/videoN")
    if what == CONTROLS:
        return (f"it is {what}, not a video: an avatar is driven by it with `gaussian-head render ME.ply --controls "
                "FILE`; the camera is a video file, a still photo or /dev/videoN")
    return "not a video format OpenCV's FFmpeg can play (unsupported format, or not a video)"


def still_image(path: str) -> np.ndarray | None:
    """A still image file (JPEG, PNG, WebP, TIFF, ...: what Pillow opens, not animated) -> [H, W, 3] uint8 RGB decoded
    as a photo is (`imageio.read_image`: EXIF orientation applied, transparency composited, ICC colours converted);
    None for anything else (a video, an animated GIF: a file no Pillow format claims), which OpenCV then
    plays. Reads the header only unless it is a still image. Raises ValueError naming the file and why when Pillow
    knows it as a still image but cannot decode it (corrupt, truncated, too large): OpenCV played a truncated JPEG's
    EXIF thumbnail, its lower half flat green, without a word (user20, review20, s20). A phone photo given as a video
    source (video:=me.jpg) was played as OpenCV decoded it: lying on its side (no EXIF orientation), the colour under
    transparent pixels showing."""
    from PIL import Image

    from gaussian_head_ros.core import imageio

    try:
        with Image.open(path) as im:  # the header only
            if im.format == "MPEG" or getattr(im, "is_animated", False):  # (Pillow names MPEG-1 video, not decodes it)
                return None
    except Image.UnidentifiedImageError:  # not an image Pillow knows (a video): OpenCV plays it
        return None
    except Image.DecompressionBombError:  # above Pillow's own limit: read_image decodes a JPEG reduced, or says why
        pass
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):  # an image whose header breaks off ('Truncated
        pass  # File Read' in a JPEG's EXIF block): read_image says why
    try:
        return imageio.read_image(path)
    except ValueError as e:
        raise ValueError(f"cannot decode image {path!r}: {e}") from e


def read_frames(path: str, max_frames: int | None = None) -> list[VideoFrame]:
    """All frames of a (short) video file, in memory."""
    with VideoSource(path) as src:
        out = []
        for f in src:
            out.append(f)
            if max_frames is not None and len(out) >= max_frames:
                break
    if not out:
        raise ValueError(f"video {path!r} has no frames OpenCV can decode")
    return out


ISO_BMFF_SUFFIXES = (".mp4", ".m4v", ".mov")  # containers of ISO base media boxes (`_iso_bmff_boxes`)


def _written_whole(path: str) -> bool:
    """Whether the video file `path`, just written and released, was written whole, by its container's rules (the
    suffix chooses the container, as it chose OpenCV's muxer): an MP4 / M4V / MOV has its index ('moov' box) and no
    box cut off; an AVI's RIFF header counts no more bytes than the file has (its sizes are written at release); any
    Matroska (.mkv) file's Segment element counts no more bytes than the file has (written at release too); any
    other has a first frame that reads back. The MP4 rule alone refused every whole .avi and .mkv that `render -o`,
    `eval --output` and `demo --output` accept ('cut short ..., its index missing', user46, s46)."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in ISO_BMFF_SUFFIXES:
        boxes = _iso_bmff_boxes(path)
        return boxes is not None and "moov" in boxes[0] and not boxes[1]
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        size = os.path.getsize(path)
    except OSError:
        return False
    if suffix == ".avi":
        return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI " and \
            struct.unpack("<I", head[4:8])[0] + 8 <= size
    if suffix == ".mkv":
        end = _matroska_segment_end(head)
        return end is not None and end <= size
    with held_stderr() as held:  # FFmpeg's own lines about a file it cannot read are ours to say
        cap = cv2.VideoCapture(path)
        try:
            ok = cap.isOpened() and cap.read()[0]
        finally:
            cap.release()
        if not ok:
            held.drop_ffmpeg()
    return bool(ok)


def _ebml_number(data: bytes, pos: int, marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length number at data[pos:] (RFC 8794 section 4: its length is the count of leading zero bits
    of its first byte + 1) -> (its value, the position after it); an element ID keeps its length marker bit
    (`marker`), a size does not, and a size of all 1 bits (unknown) is None. ValueError past the data or for a first
    byte of 0."""
    if pos >= len(data) or data[pos] == 0:
        raise ValueError("no EBML number there")
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        raise ValueError("EBML number cut off")
    value = int.from_bytes(data[pos:pos + length], "big")
    if marker:
        return value, pos + length
    value &= (1 << (7 * length)) - 1
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _matroska_segment_end(head: bytes) -> int | None:
    """The byte where a Matroska file's Segment element ends, as its header (the first bytes of the file: the EBML
    header, then the Segment's ID and size) says; None when `head` is no Matroska start or the size is unknown."""
    try:
        ident, pos = _ebml_number(head, 0, marker=True)
        length, pos = _ebml_number(head, pos, marker=False)
        if ident != 0x1A45DFA3 or length is None:
            return None
        ident, pos = _ebml_number(head, pos + length, marker=True)
        length, pos = _ebml_number(head, pos, marker=False)
    except ValueError:
        return None
    return pos + length if ident == 0x18538067 and length is not None else None


class VideoWriter:
    """An mp4 (MPEG-4 Part 2, OpenCV's mp4v) of [H, W, 3] uint8 RGB frames, the one video writer of the package
    (`gaussian-head render`, the evaluation's side-by-side, the demo's recording). Opened at the first frame,
    whose size (cropped to even numbers for the encoder) holds for the whole file; its directory is made. The file
    appears at `path` when closed (files.WholeFile): leaving a `with` block by an exception (Ctrl-C included)
    deletes what was written and keeps what `path` held before; `close()` outside one keeps what was written.
    `write` raises ValueError when the file cannot be opened for writing or a frame's size differs."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path, self.fps = str(path), float(fps) if fps and fps > 0 else 25.0
        self._writer = None
        self._file = None  # files.WholeFile once opened
        self._size = None  # (H, W) of the file
        self.frames = 0  # written so far
        self._start_s: float | None = None  # write_at: the first frame's time (s)
        self._held: np.ndarray | None = None  # write_at: the newest frame, the picture until the next one's slot

    def write(self, rgb: np.ndarray) -> None:
        """Append one [H, W, 3] uint8 RGB frame (cropped to even sides). Raises ValueError when the file cannot
        be opened or the size differs from the first frame's."""
        rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]
        if self._writer is None:
            try:
                whole = WholeFile(self.path)  # makes the directory
            except OSError as e:
                raise ValueError(f"cannot write video {self.path!r}: {e.strerror or e}") from None
            writer = cv2.VideoWriter(whole.part, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                     (rgb.shape[1], rgb.shape[0]))
            if not writer.isOpened():
                try:  # the system's reason, when it is the file: a place it cannot be written was said as a missing
                    with open(whole.part, "ab"):  # encoder (user26, s26: -o /proc/r.mp4)
                        pass
                except OSError as e:
                    raise ValueError(f"cannot write video {self.path!r}: {e.strerror or e}") from None
                finally:
                    whole.discard()
                raise ValueError(f"cannot write video {self.path!r} (no mp4v encoder in this OpenCV?)")
            self._writer, self._file, self._size = writer, whole, rgb.shape[:2]
        if rgb.shape[:2] != self._size:
            raise ValueError(f"frame of size {rgb.shape[:2]} after {self._size}: sizes must not change")
        self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames += 1

    def write_at(self, rgb: np.ndarray, time_s: float) -> None:
        """Append one [H, W, 3] uint8 RGB frame that was shown at `time_s` (seconds of any one clock, e.g.
        time.monotonic() as it arrived), so that the file plays in real time at its fps: each frame is the picture
        from its own slot, round((time_s - the first frame's) x fps), until the next frame's; a frame that came
        slower than the fps is repeated, one whose slot is taken already only replaces the picture held for the next
        slot. A display stream received at 9.1 FPS written frame by frame to a 30 fps file (the demo's out/demo.mp4)
        played 3.3 times too fast. Raises ValueError as `write`."""
        if self._start_s is None:
            self._start_s = time_s
        slot = int(round((time_s - self._start_s) * self.fps))
        if slot >= self.frames:
            while self._held is not None and self.frames < slot:
                self.write(self._held)
            self.write(rgb)
        self._held = rgb

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) in pixels of the file's frames: the first frame's, cropped to even sides (OpenCV's mp4v
        drops an odd last row and column too); None before the first frame."""
        return None if self._size is None else (int(self._size[1]), int(self._size[0]))

    def close(self, keep: bool = True) -> None:
        """Finish the file and put it at `path` (idempotent); `keep=False`: delete what was written instead, `path`
        keeps what it held. Raises OSError when the finished file cannot be renamed into place, ValueError (the
        part deleted, `path` keeping what it held) when the file was cut short while written: OpenCV's writer says
        nothing when a write fails (a full disk: a 151 KB mp4 without its index was put at `render -o` and said
        'wrote ...: 150 frames', user45, s45), and an MP4 whose index ('moov', written at release) is missing or
        cut off is what such a failure leaves (`_written_whole`, which reads AVI and Matroska files by their own
        rules)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if not keep:
                self._file.discard()
                return
            if not _written_whole(self._file.part):
                size = os.path.getsize(self._file.part) if os.path.exists(self._file.part) else 0
                free_kb = shutil.disk_usage(os.path.dirname(self._file.part)).free // 1000  # before the part goes
                self._file.discard()
                raise ValueError(f"cannot write video {shown(self.path)}: the file was cut short at {size} bytes "
                                 f"while it was written, its index missing ({free_kb} KB free there: is the disk "
                                 f"full?); nothing is written there")
            self._file.commit()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(keep=exc_type is None)


class SideBySideWriter(VideoWriter):
    """A VideoWriter of frame pairs placed side by side: driver | render.

    `add(left, right)` takes two [H, W, 3] uint8 RGB images; a right image of another size is scaled to
    the left one's height. Raises ValueError when the file cannot be opened for writing."""

    def add(self, left: np.ndarray, right: np.ndarray) -> None:
        """Write left | right as one frame ([H, W, 3] uint8 RGB each; right scaled to left's height)."""
        h = left.shape[0]
        if right.shape[0] != h:
            right = cv2.resize(right, (max(1, round(right.shape[1] * h / right.shape[0])), h),
                               interpolation=cv2.INTER_AREA)
        self.write(np.concatenate([left, right], axis=1))
