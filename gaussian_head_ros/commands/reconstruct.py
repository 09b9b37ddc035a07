"""`gaussian-head reconstruct`: one portrait photo -> a drivable Gaussian head avatar (.ply).

    gaussian-head reconstruct photo.jpg -o me.ply                    # me.ply + me.driving.npz
    gaussian-head reconstruct photo.jpg -o me.ply --preview out/     # + photo.png, render.png, mask.png
    gaussian-head reconstruct photo.jpg -o me.ply --backend rar --option checkpoint=rar.pt

A photo that cannot make an avatar (no face, too small, turned too far, unreadable) exits with status 1
and one line on stderr naming the photo and saying why.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)


def _option(text: str) -> tuple[str, object]:
    """'name=value' -> (name, value as int, float, bool or str)."""
    if "=" not in text:
        raise ValueError(f"--option needs name=value, got {text!r}")
    name, value = text.split("=", 1)
    for conv in (int, float):
        try:
            return name.strip(), conv(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return name.strip(), value.lower() == "true"
    return name.strip(), value


def _check_preset(backend: str, preset: str) -> None:
    """Raise ValueError saying what to do when the reconstruction backend `backend` takes no --preset: rar's model
    size is the one its checkpoint was trained with (the train config's `preset`), not chosen at reconstruction;
    `--backend rar --preset small` answered only "unknown rar options: 'preset'" (user60)."""
    from gaussian_head_ros.core.reconstruct import backend_class
    from gaussian_head_ros.core.reconstruct.mesh_fit import PRESETS

    if "preset" in backend_class(backend).OPTIONS:
        return
    raise ValueError(f"--preset {preset} with --backend {backend}: presets are mesh_fit's ({', '.join(PRESETS)}: its "
                     f"Gaussian budget); a {backend} model's size is its checkpoint's, the preset it was trained with "
                     "(the train config's 'preset: ...', docs/TRAINING.md). Leave --preset out and give the trained "
                     "model: --option checkpoint=MODEL.pt")


def add_arguments(p):
    from gaussian_head_ros.commands import int_range, ply_output
    from gaussian_head_ros.core.reconstruct import BACKENDS, DEFAULT_BACKEND
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig
    from gaussian_head_ros.core.settings import settings

    p.add_argument("photo", help="portrait photo (JPEG, PNG, ...): one person, face visible")
    p.add_argument("-o", "--output", required=True, type=ply_output,
                   help="avatar file to write: ME.ply (a standard 3DGS .ply for splat viewers) and, beside it, "
                        "ME.driving.npz (what driving needs)")
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKENDS),
                   help=f"reconstructor (default {DEFAULT_BACKEND}: training-free, CPU)")
    p.add_argument("--preset", default=None,
                   help="mesh_fit preset: fast, default, dense (its Gaussian budget); rar has none: its model's size "
                        "is its checkpoint's")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="backend option, repeatable (e.g. max_gaussians=40000, min_face_px=80, checkpoint=rar.pt)")
    p.add_argument("--operator-id", default="", help="operator id stored in the avatar (default: the photo's name)")
    p.add_argument("--preview", metavar="DIR", help="also write DIR/photo.png, DIR/render.png and (mesh_fit) DIR/mask.png, "
                                                     "at the source camera's size (rar: its model's crop) (DIR is "
                                                     "made when missing)")
    p.add_argument("--max-pixels", type=int_range(*settings(FramingConfig)["max_pixels"].range), default=None,
                   help="pixel limit of the decoded photo (default 40M): larger JPEGs are decoded at 1/2, 1/4 or 1/8, "
                        "other formats refused")


def run(args) -> int:
    from pathlib import Path

    from gaussian_head_ros.core.avatar import driving_path, save_ply
    from gaussian_head_ros.core.files import check_writable, shown
    from gaussian_head_ros.core.imageio import read_image
    from gaussian_head_ros.core.reconstruct import check_options, get_reconstructor
    from gaussian_head_ros.core.reconstruct.base import ReconstructionError
    from gaussian_head_ros.core.reconstruct.preview import PREVIEW_FILES, write_preview

    options = dict(_option(o) for o in args.option)
    if args.preset:
        _check_preset(args.backend, args.preset)
        options["preset"] = args.preset
    if args.max_pixels is not None:
        options["max_pixels"] = args.max_pixels
    check_options(args.backend, **options)  # an unknown or bad option said before the photo is decoded
    check_writable(args.output, "-o/--output", example="me.ply")  # where the avatar and the preview go, checked
    check_writable(driving_path(args.output), "-o/--output's driving file")  # written beside it: a folder there
    if args.preview:  # before the work: '--preview a_file' failed with 'File exists' after the reconstruction
        check_writable(args.preview, "--preview", directory=True)
        for name in PREVIEW_FILES:  # `--preview .` wrote its photo.png over the photo.png reconstructed (user45)
            check_writable(os.path.join(args.preview, name), f"--preview's {name}", reads={"photo": args.photo},
                           instead="name another --preview directory")
    limit = int(options.get("max_pixels", 40_000_000))
    rgb = read_image(args.photo, max_pixels=limit)
    operator = args.operator_id or Path(args.photo).stem
    t0 = time.perf_counter()
    with get_reconstructor(args.backend, **options) as rec:
        try:
            result = rec.reconstruct(rgb, operator_id=operator)
        except ReconstructionError as e:
            raise e.naming(shown(args.photo)) from None
    dt = time.perf_counter() - t0
    for w in result.warnings:
        log.warning("%s", w)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    ply, driving = save_ply(result.avatar, args.output)
    size_mb = ply.stat().st_size / 1e6
    print(f"{ply}: {result.avatar.num_gaussians} Gaussians, {size_mb:.1f} MB, {dt:.2f} s "
          f"({args.backend}, operator {operator!r}) - opens in 3DGS viewers")
    print(f"{driving}: what driving needs (keep it beside {ply.name})")
    if args.preview:
        for p in write_preview(result, args.preview):
            print(f"preview: {p}")
    return 0
