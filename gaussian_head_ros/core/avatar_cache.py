"""The last published avatar kept on disk, so that reconstruction_node serves it again after a restart.

A latched (transient local) topic is held by its publisher: when reconstruction_node restarts without a
photo, the avatar left with the old process and a render node that joins later gets nothing. The node keeps
the bytes of the last avatar message it published in one file and republishes them at start-up.

Beside the payload the writer may keep a short `note` (bytes; reconstruction_node: what the avatar was made from,
so that the same photo after a restart is known as the one the avatar was made from), written and read with it.

File layout (one file, little-endian): MAGIC (8 bytes), the SHA-256 of the writer's `kind` (32 bytes: what the
payload is, e.g. the message definition, so a cache of an older definition is refused, not misread), the SHA-256
of the note and payload (32 bytes: of the note's length as uint64, the note, the payload), the payload length
(8 bytes, uint64), the note length (8 bytes, uint64), the note, the payload (the serialized message; this
module never looks inside). Layout 1 (MAGIC1: no note length or note, the SHA-256 of the payload alone), written
before session 17, is still read (its note is empty). Written to a
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

from gaussian_head_ros.core import files
from gaussian_head_ros.core.files import shown

MAGIC = files.AVATAR_CACHE_MAGIC + b"2\n"  # b"GHRAVC2\n": gaussian_head_ros avatar cache, layout 2 (with a note)
MAGIC1 = files.AVATAR_CACHE_MAGIC + b"1\n"  # layout 1: read, no longer written
_HEAD = struct.Struct("<8s32s32sQQ")  # magic, sha256 of the kind, sha256 of note and payload, their lengths
_HEAD1 = struct.Struct("<8s32s32sQ")  # layout 1: magic, sha256 of the kind, sha256 of the payload, payload length
MAX_NOTE_BYTES = 1 << 20
MAX_BYTES = 1 << 30  # larger files are refused without reading them (a 10M-Gaussian avatar is ~0.9 GB)


def default_path(node_namespace: str, node_name: str, domain_id: int = 0) -> Path:
    """Where a node keeps its cache unless told: $ROS_HOME (default ~/.ros, as ROS 2 logs) /gaussian_head_ros/
    [domain<ROS domain id>_]<namespace and node name, '/' as '_'>.avatar: one file per node of each namespace (robot1,
    robot2 ...) of each ROS domain (`domain_id`, the node's: a node's name is unique within its domain only). Domain 0
    has no prefix (the file of every release before). Keyed per namespace alone, two robots in the root namespace of
    two domains on one host (ROS_DOMAIN_ID=1 and 2) shared one file: a restarted robot served the other one's
    operator (user62, user63)."""
    home = Path(os.environ.get("ROS_HOME") or Path.home() / ".ros").expanduser()
    domain = [f"domain{int(domain_id)}"] if domain_id else []
    name = "_".join(p for p in (domain + node_namespace.strip("/").split("/") + [node_name]) if p)
    return home / "gaussian_head_ros" / f"{name}.avatar"


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _content_digest(note: bytes, payload: bytes) -> bytes:
    h = hashlib.sha256(struct.pack("<Q", len(note)))
    h.update(note)
    h.update(payload)
    return h.digest()


def check_path(path: str | os.PathLike) -> None:
    """Raise ValueError saying why `path` (`~` expanded) cannot be the cache file `write` keeps: a directory, or below a
    file (its nearest existing ancestor is not a directory), or below a directory this process cannot write in, or a
    file that `files.kind` names as something else (a photo, an avatar .ply: cache_path:=me.ply was written over, the
    avatar lost; user45, s45) (files.check_writable). A stat per ancestor and the first bytes of the file, nothing
    written. Before, a cache_path naming a directory was taken and said only at the next write, after a reconstruction
    ('cannot write ...: Is a directory'; user18, s18)."""
    files.check_writable(path, "cache_path", example="avatar.cache", writes=files.AVATAR_CACHE)


def write(path: str | os.PathLike, payload: bytes, kind: str, note: bytes = b"") -> None:
    """Store `payload` (bytes of what `kind` names) and `note` (at most MAX_NOTE_BYTES) at `path` atomically,
    creating its directory. Raises OSError when it cannot, ValueError for a note over MAX_NOTE_BYTES and for a
    `path` that `check_path` refuses (checked at each write: the file there may have changed since cache_path was)."""
    if len(note) > MAX_NOTE_BYTES:
        raise ValueError(f"a cache note of {len(note)} bytes is over {MAX_NOTE_BYTES}")
    check_path(path)
    path = Path(shown(path))  # absolute: a node's relative cache_path is taken against its own directory
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEAD.pack(MAGIC, _digest(kind.encode()), _content_digest(note, payload), len(payload), len(note)))
            f.write(note)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: str | os.PathLike, kind: str) -> bytes | None:
    """The payload stored at `path` for `kind`; None when there is no file. Raises ValueError as read_entry."""
    entry = read_entry(path, kind)
    return None if entry is None else entry[0]


def read_entry(path: str | os.PathLike, kind: str) -> tuple[bytes, bytes] | None:
    """(payload, note) stored at `path` for `kind` (the note of a layout-1 file is b""); None when there is no
    file. Raises ValueError (saying why) when the file cannot be read or is not an intact cache of `kind` (wrong
    layout or kind, truncated, checksum mismatch, over MAX_BYTES)."""
    path = Path(shown(path))  # absolute: a node's relative cache_path is taken against its own directory
    try:
        size = path.stat().st_size
        if size > MAX_BYTES + MAX_NOTE_BYTES + _HEAD.size:
            raise ValueError(f"{path}: {size} bytes, more than an avatar cache holds")
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    layout1 = data[:len(MAGIC1)] == MAGIC1
    head = _HEAD1 if layout1 else _HEAD
    if len(data) < head.size:
        raise ValueError(f"{path}: {len(data)} bytes, too short to be an avatar cache")
    if layout1:
        magic, kind_digest, digest, length = head.unpack_from(data)
        note_length = 0
    else:
        magic, kind_digest, digest, length, note_length = head.unpack_from(data)
    if magic not in (MAGIC, MAGIC1):
        what = files.kind(data[:files.HEAD_BYTES], path)
        raise ValueError(f"{path}: {what}, not an avatar cache (left as it is)" if what else
                         f"{path}: not an avatar cache of this version")
    if kind_digest != _digest(kind.encode()):
        raise ValueError(f"{path}: written for another message definition (an older or newer version)")
    if note_length > MAX_NOTE_BYTES:
        raise ValueError(f"{path}: a note of {note_length} bytes, more than an avatar cache holds")
    note, payload = data[head.size:head.size + note_length], data[head.size + note_length:]
    if len(payload) != length or len(note) != note_length:
        raise ValueError(f"{path}: truncated ({len(note) + len(payload)} of {note_length + length} bytes)")
    if (_digest(payload) if layout1 else _content_digest(note, payload)) != digest:
        raise ValueError(f"{path}: checksum mismatch (the file is corrupt)")
    return payload, note
