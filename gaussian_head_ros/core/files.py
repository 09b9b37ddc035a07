"""Files a person names (a photo, an avatar, a controls file, a model): how a message shows their path.

`shown(path)` is the one rule: the path as it was looked for, absolute (`~` expanded, a relative path joined to the
current directory). A node's relative parameter is taken against the directory the node was started in (`ros2
launch` starts nodes where it was run, a systemd unit in /), and a `gaussian-head` path against the shell's: a
message that repeated 'me.jpg' as given did not say where it was looked for.
"""

from __future__ import annotations

import contextlib
import os
import re


def is_url(path: str | os.PathLike) -> bool:
    """Whether `path` is written as a URL (`scheme://...`: file:///home/me/me.jpg as a file manager copies it, https://),
    which no reader here opens as a file."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", os.fspath(path)) is not None


def shown(path: str | os.PathLike) -> str:
    """The file `path` as messages show it: absolute, `~` expanded, not resolved through links (a relative
    'photos/me.jpg' run from /home/op is '/home/op/photos/me.jpg'). '' stays '' (nothing was given); a URL (is_url)
    as given: 'file:///home/me/me.jpg' was shown '/home/op/file:/home/me/me.jpg' (user48)."""
    text = os.fspath(path)
    return os.path.abspath(os.path.expanduser(text)) if text and not is_url(text) else text


def url_note(path: str | os.PathLike) -> str:
    """' (a URL: ...)' to add to the reason a file `path` cannot be read when it is a URL (is_url), else ''."""
    return " (a URL: give the path of a file on this machine)" if is_url(path) else ""


def relative_note(path: str | os.PathLike, reader: str) -> str:
    """' (a relative path is read from READER's working directory, CWD: ...)' to add to the reason a file `path` set
    on a running node cannot be read, when `path` is relative (after `~`) and nothing is there, else ''. The README's
    `ros2 param set /photo_node photo other.jpg`, run from another directory than the launch's, said only 'cannot
    read /where/launch/ran/other.jpg: No such file or directory' (user56): the node, not the shell that set the
    parameter, resolves it."""
    text = os.path.expanduser(os.fspath(path))
    if not text or os.path.isabs(text) or is_url(text) or os.path.lexists(text):
        return ""
    return (f" (a relative path is read from {reader}'s working directory, {os.getcwd()}, not from the shell that set "
            "it: give the photo's absolute path, e.g. $PWD/" + text + ")")


def check_exists(path: str | os.PathLike, what: str) -> None:
    """Raise ValueError '{what} {shown(path)} not found' (and url_note's words for a URL) when nothing is at `path`.
    A file read through pathlib lost a URL's '//' before the system said it missing: `bench --avatar
    file:///home/me/me.ply` said 'No such file or directory: /home/op/file:/home/me/me.ply' (user48b)."""
    if not os.path.exists(os.fspath(path)):
        raise ValueError(f"{what} {shown(path)} not found{url_note(path)}")


DRIVING_SUFFIX = ".driving.npz"  # an avatar's second file, beside its .ply (core.avatar.save_ply)
# How much of a file's start `kind` wants: a torch.save zip's first member is '<the file's stem>/data.pkl' after the
# 30-byte local header, and a file's stem may be 255 bytes (Linux's NAME_MAX): 64 bytes cut the name of any file
# whose stem passed 25 characters ('tiny-seed0-checkpoint-step900.pt'), so a checkpoint was not known as one.
HEAD_BYTES = 30 + 255 + len("/data.pkl")

# A file's first bytes -> what it is (magic numbers: JPEG SOI FF D8 FF, PNG's signature, GIF87a/89a, BMP 'BM', TIFF
# II*/MM*; RIFF....WEBP and ISO BMFF 'ftyp' + brand are read in `kind`)
_PHOTO_MAGIC = ((b"\xff\xd8\xff", "a JPEG photo"), (b"\x89PNG\r\n\x1a\n", "a PNG photo"), (b"GIF8", "a GIF image"),
                (b"II*\x00", "a TIFF photo"), (b"MM\x00*", "a TIFF photo"), (b"BM", "a BMP image"))
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")
AVATAR_PLY = "an avatar .ply"
AVATAR_CACHE = "an avatar cache"  # reconstruction_node's cache_path file (core.avatar_cache)
AVATAR_CACHE_MAGIC = b"GHRAVC"  # the first bytes of every layout of it (avatar_cache.MAGIC, MAGIC1)
DRIVING_FILE = "an avatar's driving file (.driving.npz)"
CONTROLS = "a controls file (FaceControl JSON lines, what `gaussian-head track` writes)"
TFLITE = "a TensorFlow Lite model (.tflite)"
TORCH_FILE = "a PyTorch file (torch.save)"  # a zip whose first member is <archive>/data.pkl (a checkpoint, a state_dict)
TASK = "a MediaPipe model bundle (.task)"


def is_ply(head: bytes) -> bool:
    """Whether a file's first bytes (at least 4) are a .ply file's: its first line is `ply` (PLY's magic; `save_ply`
    writes it, as every 3DGS exporter does). What tells an avatar file from a photo given where a photo is expected
    (reconstruction_node's `photo_path` publishes one as it is; a .ply sent as a photo is named, not 'corrupt')."""
    return head[:4] in (b"ply\n", b"ply\r")


def kind(head: bytes, name: str = "") -> str | None:
    """What a file is, from its first bytes `head` (HEAD_BYTES of them; fewer for a shorter file) and its name
    (optional): a photo ('a JPEG photo', ...), a video, AVATAR_PLY, AVATAR_CACHE, DRIVING_FILE (a .npz named
    *.driving.npz, or whose first member is save_ply's metadata.npy), another numpy archive, CONTROLS (a JSON object
    line with a FaceControl's keys), TFLITE, TASK (a zip of .tflite models), TORCH_FILE, another zip archive; None when its bytes
    say nothing. For the messages of a file given in another's place: `gaussian-head render c.jsonl --controls
    me.ply`, a .driving.npz given as the photo, cache_path:=me.ply."""
    what = next((w for magic, w in _PHOTO_MAGIC if head.startswith(magic)), None)
    if what:
        return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP photo"
    if head[4:8] == b"ftyp":
        return "a HEIC/HEIF photo" if head[8:12] in _HEIF_BRANDS else "a video (MP4/MOV)"
    if is_ply(head):
        return AVATAR_PLY
    if head.startswith(AVATAR_CACHE_MAGIC):
        return AVATAR_CACHE
    at = head.find(b"PK\x03\x04", 0, 8)  # a zip (a MediaPipe .task starts 2 bytes in): its first member's name at
    if at >= 0:  # 30, its length at 26 (PKZIP local file header)
        first = head[at + 30:at + 30 + int.from_bytes(head[at + 26:at + 28], "little")]
        if os.fspath(name).endswith(DRIVING_SUFFIX) or first == b"metadata.npy":
            return DRIVING_FILE
        if first.endswith(b".tflite"):
            return TASK
        if first.endswith(b"/data.pkl"):
            return TORCH_FILE
        return "a numpy archive (.npz)" if first.endswith(b".npy") else "a zip archive"
    if head[4:8] == b"TFL3":  # a TensorFlow Lite flatbuffer's file identifier
        return TFLITE
    text = head.lstrip()
    if text.startswith(b"{") and (b'"stamp_ns"' in text or b'"face_detected"' in text):
        return CONTROLS
    return None


def file_kind(path: str | os.PathLike) -> str | None:
    """`kind` of the file at `path` (its first HEAD_BYTES); None when it says nothing or cannot be read (the caller's
    own open says why)."""
    try:
        with open(path, "rb") as fh:
            return kind(fh.read(HEAD_BYTES), os.fspath(path))
    except OSError:
        return None


def check_writable(path: str | os.PathLike, what: str, directory: bool = False, example: str = "",
                   writes: str = "", reads: dict | None = None, instead: str = "name another file") -> str:
    """Raise ValueError saying why `path` (`~` expanded) cannot be written as `what` (the option or parameter, e.g.
    '-o', '--preview', 'cache_path'): a file to write that is a directory (`example`: a file name to suggest in it), a
    directory to write in that is a file, a place below a file, or below a directory this process cannot write in
    (a read-only file system said so). A stat per ancestor, nothing written; missing directories count as made
    (the writer makes them). `writes`: the kind of file written (CONTROLS, ...): an existing file that `kind` names as
    another (a video, a photo, an avatar) is refused, not overwritten: `track clip.mp4 -o clip.mp4` wrote its controls
    over the clip, and `track clip.mp4 -o me.ply` over the avatar (cli37, s37). Returns the absolute path. What
    `gaussian-head` checks its outputs with before any work: `reconstruct --preview a_file` failed with 'File exists:
    a_file' after the whole reconstruction. `reads`: the command's input files by option ({'--video': 'clip.mp4'}):
    `path` being one of them (os.path.samefile: another name for it too) is refused, as `eval --video mine.mp4 --output
    mine.mp4` replaced the clip with its side-by-side (user45, s45); `instead`: what to do then ('name another
    --preview directory' for a file the command names itself)."""
    import errno

    full = shown(path)
    limit = name_max(os.path.dirname(full))
    for part in (p for p in full.split(os.sep) if p):
        if len(part.encode()) > limit:  # said before the work, naming the file: it failed after the whole
            # reconstruction with 'File name too long' naming the file written beside it (cli63)
            raise ValueError(f"{what} {full}: the name {part[:24]}... is {len(part.encode())} bytes long, above the "
                             f"{limit} bytes a file or directory name may have on this file system; name a shorter one")
    if directory and os.path.exists(full) and not os.path.isdir(full):
        raise ValueError(f"{what} {full} is a file, not a directory: name a directory (it is made when missing)")
    if not directory and os.path.isdir(full):
        raise ValueError(f"{what} {full} is a directory: name a file in it"
                         + (f" (e.g. {os.path.join(full, example)})" if example else ""))
    above = next((p for p in _ancestors(full, directory) if os.path.exists(p)), None)
    if above is not None and not os.path.isdir(above):
        raise ValueError(f"{what} {full} is below {above}, which is a file, not a directory")
    if above is not None and not os.access(above, os.W_OK | os.X_OK):
        # a robot's read-only root file system was said as 'permission denied' (user26, s26: a tmpfs mounted ro)
        read_only = bool(os.statvfs(above).f_flag & os.ST_RDONLY)
        raise ValueError(f"{what} {full}: cannot write in {above} ("
                         f"{'a read-only file system: name a ' + ('directory' if directory else 'file') + ' on a writable one' if read_only else os.strerror(errno.EACCES).lower()})")
    for option, source in (reads or {}).items():
        if source and os.path.isfile(full) and os.path.isfile(source) and os.path.samefile(full, source):
            raise ValueError(f"{what} {full} is the {option} file this command reads: writing over it would lose it; "
                             f"{instead}" + (f" ({example})" if example and example != os.path.basename(full) else ""))
    there = file_kind(full) if writes and os.path.isfile(full) else None
    if there not in (None, writes):
        raise ValueError(f"{what} {full} is {there}: writing {writes} over it would lose it; name another file"
                         + (f" ({example})" if example else ""))
    return full


NAME_MAX = 255  # [bytes] a file name's longest on Linux's file systems (ext4, xfs, btrfs, tmpfs), where pathconf says none


def name_max(folder: str) -> int:
    """The longest file name (bytes) in `folder`, or its nearest existing ancestor (os.pathconf's PC_NAME_MAX);
    NAME_MAX when none says."""
    while folder and not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return int(os.pathconf(folder or ".", "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def _ancestors(full: str, directory: bool):
    """`full` itself (a directory to write in) and then its parents, nearest first."""
    if directory:
        yield full
    parent = os.path.dirname(full)
    while True:
        yield parent
        if os.path.dirname(parent) == parent:
            return
        parent = os.path.dirname(parent)


class WholeFile:
    """A file that appears at `path` whole or not at all: the writer writes `part` (`.NAME.partial-PID.EXT` beside
    `path`, same directory and extension, so an encoder that goes by the extension picks the same format), and
    `commit()` renames it over `path` (os.replace: atomic on one file system); `discard()`, or leaving a `with` block
    by an exception (Ctrl-C included), deletes it and leaves what was at `path` before. Before, `gaussian-head render`
    and `track` wrote into `path` as they went: a Ctrl-C (exit 130, nothing said) left a video cut short or a controls
    file cut off in place of the previous one, and `track` of a clip with no face exited 1 beside the file it had
    written. Its directory is made when missing. `path` may be str or PathLike; `part` is a str."""

    def __init__(self, path: str | os.PathLike):
        self.path = shown(path)
        folder, name = os.path.split(self.path)
        tail = f".partial-{os.getpid()}{os.path.splitext(name)[1]}"
        # the part's name within the file system's limit: '.NAME' + tail is ~20 bytes longer than NAME, and a legal
        # 240-byte NAME failed after the whole work with 'File name too long' naming the part (cli63); NAME is cut
        # (at a character, not inside a UTF-8 sequence) to fit
        room = name_max(folder) - len(tail.encode()) - 1
        cut = name.encode()[:max(room, 1)].decode(errors="ignore")
        self.part = os.path.join(folder, f".{cut}{tail}")
        os.makedirs(folder, exist_ok=True)

    @contextlib.contextmanager
    def writing(self, mode: str = "wb"):
        """`open(self.part, mode)` as a context manager whose OSErrors (opening, writing, closing) name `path`, the file
        the person asked for: a full disk said 'No space left on device' and no file (a write error has no file
        name), and a place no file can be made in named the part, '.me.ply.partial-955.ply' (user43, user45)."""
        try:
            with open(self.part, mode) as fh:
                yield fh
        except OSError as e:
            raise OSError(e.errno, e.strerror, self.path) from None

    def commit(self) -> None:
        """Rename the written part over `path` (idempotent once done). Raises OSError naming `path` when it cannot
        (`path` a directory), the part deleted."""
        if os.path.exists(self.part):
            try:
                os.replace(self.part, self.path)
            except OSError as e:  # said as the part's name, and the part was left beside it
                self.discard()
                raise OSError(e.errno, e.strerror, self.path) from None

    def discard(self) -> None:
        """Delete the written part, if any; `path` keeps what it held."""
        try:
            os.unlink(self.part)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
