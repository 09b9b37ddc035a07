"""The `rar` reconstructor: the learned RAR model (core/model/rar.py) behind the Reconstructor interface.

Options (reconstruction_node parameters / `gaussian-head reconstruct --backend rar --option k=v`):
  checkpoint   path of a checkpoint written by `gaussian-head train` (required; never downloaded)
  device       auto (CUDA when available), cpu or cuda
  backbone_weights  where the checkpoint's frozen backbone lies now, when the checkpoint stores a reference to
               it (the default: the WebSSL directory, or the backbone-<hash>/ folder a random-backbone run wrote)
               and it has moved; its hash is checked (a folder of that name beside the checkpoint is found alone)
  and any FramingConfig field except the crop geometry (min_face_px, max_yaw_deg, ...): the crop is the
  one the model was trained with (its config's crop_m, crop_center_m, source_size).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import fields

import numpy as np

from gaussian_head_ros.core.avatar import SourceCamera, sh_dc_to_rgb
from gaussian_head_ros.core.files import shown
from gaussian_head_ros.core.reconstruct.base import ReconstructionResult, Reconstructor
from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo
from gaussian_head_ros.core.settings import check_settings, unknown_names

log = logging.getLogger(__name__)

_MODEL_FRAMING = ("size", "crop_m", "crop_center_m")
DEVICES = ("auto", "cpu", "cuda")  # auto: CUDA when available


class RARReconstructor(Reconstructor):
    """One photo -> the learned model's avatar. Loads the checkpoint once; not thread-safe."""

    name = "rar"
    # the options it takes: checkpoint, device, backbone_weights and the FramingConfig fields except the
    # model's crop geometry
    OPTIONS = ("checkpoint", "device", "backbone_weights") + tuple(
        sorted({f.name for f in fields(FramingConfig)} - set(_MODEL_FRAMING)))
    FILE_OPTIONS = ("checkpoint",)  # options naming a file whose content decides the avatars (reconstructor_key)

    @classmethod
    def check_options(cls, checkpoint: str = "", device: str = "auto", backbone_weights: str = "", **framing) -> None:
        """Raise ValueError for options this backend cannot start with (without loading the checkpoint)."""
        if not checkpoint:
            raise ValueError("the rar reconstructor needs a 'checkpoint': a model trained with 'gaussian-head train' "
                             "(see docs/TRAINING.md); no weights are downloaded")
        if not os.path.isfile(checkpoint):
            raise ValueError(f"checkpoint {shown(checkpoint)} not found")
        unknown = set(framing) - set(cls.OPTIONS)
        if unknown:
            raise ValueError(unknown_names("rar options", unknown, cls.OPTIONS))
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        check_settings(FramingConfig(**framing))

    def __init__(self, checkpoint: str = "", device: str = "auto", backbone_weights: str = "", **framing):
        import torch  # here, not at the top: check_options answers without it (a node's parameter check: user65)

        from gaussian_head_ros.core.model.rar import load_checkpoint

        self.check_options(checkpoint, device, backbone_weights, **framing)
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        self.device = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
        self.model = load_checkpoint(checkpoint, self.device, backbone_weights or None)
        c = self.model.cfg
        self.framing = FramingConfig(size=c.source_size, crop_m=c.crop_m, crop_center_m=tuple(c.crop_center_m), **framing)
        self._facemesh = self._segmenter = None

    def _mesh(self):
        if self._facemesh is None:
            from gaussian_head_ros.core.facemesh import FaceMesh, PersonSegmenter

            self._facemesh = FaceMesh(static_image_mode=True, max_faces=4)
            self._segmenter = PersonSegmenter()  # the person mask of the crop, as the training data caches it
        return self._facemesh

    def reconstruct(self, rgb: np.ndarray, operator_id: str = "") -> ReconstructionResult:
        """[H, W, 3] uint8 RGB photo -> ReconstructionResult: the photo framed as mesh_fit frames it, the
        learned model's Gaussians for it, its lighting estimated from the skin Gaussians. Raises
        ReconstructionError when the framing refuses the photo."""
        t0 = time.perf_counter()
        fr = frame_photo(rgb, self._mesh(), self.framing)  # raises ReconstructionError with a status code
        mask = self._segmenter.probability(fr.photo)  # [S, S] person probability of the crop
        t1 = time.perf_counter()
        import torch

        f = lambda a: torch.as_tensor(np.array(a, np.float32), device=self.device)[None]  # noqa: E731 (a copy: writable)
        with torch.no_grad():
            out = self.model.reconstruct(f(fr.photo).permute(0, 3, 1, 2) / 255.0, f(fr.vertices), f(fr.viewmat), f(fr.K),
                                         f(mask))
        t2 = time.perf_counter()
        cam = SourceCamera(np.array([fr.K[0, 0], fr.K[1, 1], fr.K[0, 2], fr.K[1, 2]], np.float32),
                           np.asarray(fr.viewmat, np.float32), (fr.photo.shape[1], fr.photo.shape[0]))
        avatar = self.model.to_avatar(out, source_camera=cam, operator_id=operator_id)
        warnings = list(fr.warnings)
        avatar.lighting_sh = self._lighting(avatar, warnings)
        avatar.validate()
        t3 = time.perf_counter()
        return ReconstructionResult(
            avatar=avatar, warnings=warnings, photo=fr.photo, mask=None,
            timings={"framing": t1 - t0, "model": t2 - t1, "export": t3 - t2},
            info={"preset": self.model.cfg.preset, "gaussians": avatar.num_gaussians, "yaw_deg": fr.euler["yaw"],
                  "pitch_deg": fr.euler["pitch"], "face_width_px": fr.face_width_px, "device": str(self.device)})

    @staticmethod
    def _lighting(avatar, warnings: list) -> np.ndarray:
        """[9, 3] SH lighting of the photo from the skin Gaussians' colours and normals (as mesh_fit
        estimates it), so the render node can relight; [0, 3] with a warning when it cannot be told."""
        from gaussian_head_ros.core.reconstruct.lighting import estimate_lighting, skin_triangle_mask

        skin_tri = skin_triangle_mask()
        try:
            if len(skin_tri) != len(avatar.template_faces):
                raise ValueError("the model's template is not the MediaPipe face template")
            bound = avatar.face_id >= 0
            skin = bound & skin_tri[np.clip(avatar.face_id, 0, len(skin_tri) - 1)]
            return estimate_lighting(avatar.normals[skin], sh_dc_to_rgb(avatar.sh[skin, 0]))
        except ValueError as e:
            warnings.append(f"lighting not estimated: {e}")
            return np.zeros((0, 3), np.float32)

    def close(self) -> None:
        """Free the face mesh and the segmenter (idempotent)."""
        for m in (self._facemesh, self._segmenter):
            if m is not None:
                m.close()
        self._facemesh = self._segmenter = None
