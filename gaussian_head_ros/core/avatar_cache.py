"""The last published avatar kept on disk, so that reconstruction_node serves it again after a restart.

A latched (transient local) topic is held by its publisher: when reconstruction_node restarts without a
photo, the avatar left with the old process and a render node that joins later gets nothing. The node keeps
the bytes of the last avatar message it published in one file and republishes them at start-up.

File layout (one file, little-endian): MAGIC (8 bytes), the SHA-256 of the writer's `kind` (32 bytes: what the
payload is, e.g. the message definition, so a cache of an older definition is refused, not misread), the SHA-256
of the payload (32 bytes), the payload length (8 bytes, uint64), the payload (the serialized message; this
module never looks inside). Written to a
temporary file in the same directory, flushed to disk and renamed over the old one (os.replace: atomic on
POSIX), so a crash mid-write leaves the previous cache or none, never half a file. A file that is not of this
layout, is truncated, or whose checksum does not match is refused with ValueError before anyone deserializes
it (a serialized message of garbage can ask for gigabytes).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

MAGIC = b"GHRAVC1\n"  # gaussian_head_ros avatar cache, layout 1
_HEAD = struct.Struct("<8s32s32sQ")  # magic, sha256 of the kind, sha256 of the payload, payload length
MAX_BYTES = 1 << 30  # larger files are refused without reading them (a 10M-Gaussian avatar is ~0.9 GB)


def default_path(node_namespace: str, node_name: str) -> Path:
    """Where a node keeps its cache unless told: $ROS_HOME (default ~/.ros, as ROS 2 logs) /gaussian_head_ros/
    <namespace and node name, '/' as '_'>.avatar: one file per node of each namespace (robot1, robot2 ...)."""
    home = Path(os.environ.get("ROS_HOME") or Path.home() / ".ros").expanduser()
    name = "_".join(p for p in (node_namespace.strip("/").split("/") + [node_name]) if p)
    return home / "gaussian_head_ros" / f"{name}.avatar"


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def write(path: str | os.PathLike, payload: bytes, kind: str) -> None:
    """Store `payload` (bytes of what `kind` names) at `path` atomically, creating its directory. Raises
    OSError when it cannot."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEAD.pack(MAGIC, _digest(kind.encode()), _digest(payload), len(payload)))
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: str | os.PathLike, kind: str) -> bytes | None:
    """The payload stored at `path` for `kind`; None when there is no file. Raises ValueError (saying why) when
    the file cannot be read or is not an intact cache of `kind` (wrong layout or kind, truncated, checksum
    mismatch, over MAX_BYTES)."""
    path = Path(path).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_BYTES + _HEAD.size:
            raise ValueError(f"{path}: {size} bytes, more than an avatar cache holds")
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(data) < _HEAD.size:
        raise ValueError(f"{path}: {len(data)} bytes, too short to be an avatar cache")
    magic, kind_digest, digest, length = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"{path}: not an avatar cache of this version")
    if kind_digest != _digest(kind.encode()):
        raise ValueError(f"{path}: written for another message definition (an older or newer version)")
    payload = data[_HEAD.size:]
    if len(payload) != length:
        raise ValueError(f"{path}: truncated ({len(payload)} of {length} bytes)")
    if _digest(payload) != digest:
        raise ValueError(f"{path}: checksum mismatch (the file is corrupt)")
    return payload
