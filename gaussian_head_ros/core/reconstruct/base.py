"""The reconstructor interface: one photo in, one drivable GaussianAvatar out (or a reason why not).

Every backend (`mesh_fit`, `rar`, ...) implements `Reconstructor.reconstruct(rgb, operator_id)` and
returns a `ReconstructionResult`. A photo that cannot make an avatar raises `ReconstructionError`
(a ValueError) whose `code` is one of the status codes below; they equal the constants of
msg/AvatarStatus.msg, so a node can publish `code` as it is.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from gaussian_head_ros.core.avatar import GaussianAvatar

# Status codes (== gaussian_head_ros/msg/AvatarStatus constants; core must not import messages).
OK = 0
NO_FACE = 1
FACE_TOO_SMALL = 2
HEAD_TURNED_TOO_FAR = 3
BAD_IMAGE = 4
INTERNAL_ERROR = 5
FACE_CUT_OFF = 7  # the chin or forehead is outside the photo (6 BUSY, 8 SUPERSEDED and 9 STOPPED are the node's)
STATUS_NAMES = {OK: "ok", NO_FACE: "no_face", FACE_TOO_SMALL: "face_too_small",
                HEAD_TURNED_TOO_FAR: "head_turned_too_far", BAD_IMAGE: "bad_image", INTERNAL_ERROR: "internal_error",
                FACE_CUT_OFF: "face_cut_off"}


class ReconstructionError(ValueError):
    """A photo that cannot become an avatar; `code` says why (NO_FACE, FACE_TOO_SMALL, ...)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = int(code)

    def naming(self, source: str, then: str = "") -> ReconstructionError:
        """The same refusal, same code, said of `source` (a file's path, 'the clip's first frame'):
        '<source> cannot become an avatar: <reason><then>'. A batch's 'the face is 30 px wide ...' told no file
        (user56)."""
        return ReconstructionError(self.code, f"{source} cannot become an avatar: {self}{then}")


@dataclass
class ReconstructionResult:
    """What a reconstructor returns: the avatar plus what a person (or a preview) wants to see."""

    avatar: GaussianAvatar
    warnings: list[str] = field(default_factory=list)  # non-fatal remarks ("2 faces found, used the largest")
    photo: np.ndarray | None = None  # [S, S, 3] uint8: the photo as the avatar's source camera sees it
    mask: np.ndarray | None = None  # [S, S] bool: the head region (face, hair, ears, neck) in `photo`, without the
    #                                 silhouette's outermost pixels that mix in the photo's background
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    info: dict = field(default_factory=dict)  # backend-specific figures (yaw, face width, counts)
    expression: np.ndarray | None = None  # [478, 3] the photo's own expression (metres, head frame) that the
    #                                     avatar rests without: a control carrying it gives the photo back

    @property
    def duration_s(self) -> float:
        """The reconstruction's time in seconds: the sum of its stage `timings`."""
        return float(sum(self.timings.values()))


class Reconstructor(abc.ABC):
    """One photo -> one avatar. Instances may hold models; they are not thread-safe (one per thread)."""

    name: str = ""
    FILE_OPTIONS: tuple[str, ...] = ()  # options that name a file whose content decides the avatars (its checkpoint)

    @abc.abstractmethod
    def reconstruct(self, rgb: np.ndarray, operator_id: str = "") -> ReconstructionResult:
        """[H, W, 3] uint8 RGB photo -> ReconstructionResult. Raises ReconstructionError on bad input."""

    def close(self) -> None:
        """Free models and native resources (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
