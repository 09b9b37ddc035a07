"""Training: config files, the clip cache and pairs, overfitting one real clip, resume, TensorBoard, DDP."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, shared
from gaussian_head_ros.core.model.rar import load_checkpoint, read_checkpoint
from gaussian_head_ros.core.train import trainer as trainer_mod
from gaussian_head_ros.core.train.data import DataConfig, DatasetIndex, PairDataset, load_clips
from gaussian_head_ros.core.train.losses import ImageLoss, LossConfig, VGG16Features, highfreq_l1, ssim, unseen_prior_loss
from gaussian_head_ros.core.train.trainer import config_from_dict, load_config, model_config, train


@pytest.fixture(scope="module")
def clip_cfg(tmp_path_factory):
    """One real talking-head clip (big mouth movements), tracked and cached once for this module."""
    cache = tmp_path_factory.mktemp("cache")
    data = {"root": str(shared("driving", "lp_d18.mp4")), "cache_dir": str(cache), "max_frames": 32,
            "cache_resolution": 96, "landmarker_model": str(shared("models", "face_landmarker.task"))}
    load_clips(DataConfig(**data))
    return data


def _cfg(clip_cfg, out, **kw) -> dict:
    d = {"preset": "tiny", "data": clip_cfg, "out_dir": str(out), "num_workers": 0, "log_every": 5,
         "image_every": 20, "checkpoint_every": 2,
         "stages": [{"name": "stage1", "steps": 3, "resolution": 48, "batch_size": 2, "lr": 3e-3, "warmup_steps": 2}]}
    d.update(kw)
    return d


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("train_*.yaml")), ids=lambda p: p.name)
def test_example_configs_parse(path):
    cfg = load_config(path)
    assert cfg.stages and model_config(cfg).preset == cfg.preset
    assert cfg.stages[0].trainable_blocks == 0  # stage 1 keeps the backbone frozen


def test_config_errors_are_actionable(tmp_path):
    with pytest.raises(ValueError, match="unknown top-level keys: lr"):
        config_from_dict({"lr": 1})
    with pytest.raises(ValueError, match="unknown RAR preset"):
        config_from_dict({"preset": "huge"})
    with pytest.raises(ValueError, match=r"unknown stages\[0\] keys: stepz"):
        config_from_dict({"stages": [{"stepz": 3}]})
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"preset": "tiny", "model": {"generator": {"num_face": 500}}}))
    cfg = load_config(p, ["stages.0.steps=5", "data.root=/x"])
    assert cfg.stages[0].steps == 5 and cfg.data.root == "/x"
    assert model_config(cfg).generator.num_face == 500 and model_config(cfg).generator.num_head == 1000
    with pytest.raises(ValueError, match="unknown model.generator key"):
        model_config(config_from_dict({"model": {"generator": {"faces": 1}}}))


def test_config_values_of_the_wrong_kind_are_refused_and_numbers_read_as_text_taken(tmp_path):
    """`train --dry-run --set stages.0.steps=abc` ('check the config') printed steps "abc" and exit 0, and `--set
    stages.0.lr=3e-4` an lr of "3e-4" (PyYAML reads 3e-4 as a string): each failed only once training started.
    A value of another kind is refused naming its field; a number written as text is taken as one. A config file
    that is no text, or no valid YAML, is one line naming it (it was "'utf-8' codec can't decode byte 0xbc in
    position 1533", or YAML's message over four lines)."""
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"preset": "tiny"}))
    for override, said in (("stages.0.steps=abc", "stages[0].steps must be an integer, got 'abc'"),
                           ("stages.0.steps=2.5", "stages[0].steps must be an integer, got 2.5"),
                           ("seed=1.5", "seed must be an integer, got 1.5"),
                           ("amp=1", "amp must be true or false, got 1"),
                           ("loss.l1=lots", "loss.l1 must be a number, got 'lots'")):
        with pytest.raises(ValueError, match=re.escape(said)):
            load_config(p, [override])
    cfg = load_config(p, ["stages.0.lr=3e-4", "stages.0.steps=1e3", "background=1"])
    assert cfg.stages[0].lr == 3e-4 and cfg.stages[0].steps == 1000 and isinstance(cfg.stages[0].steps, int)
    assert cfg.background == 1.0
    binary = tmp_path / "me.ply"
    binary.write_bytes(b"ply\nformat binary_little_endian 1.0\n" + bytes(range(256)))
    with pytest.raises(ValueError, match=re.escape(f"training config {binary} is an avatar .ply: give a YAML or JSON")):
        load_config(binary)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\n")
    with pytest.raises(ValueError) as e:
        load_config(broken)
    assert str(e.value).startswith(f"training config {broken} is not valid YAML (line 2, column 1: ")
    assert "\n" not in str(e.value)


def test_losses(tmp_path, caplog):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 40, 40, generator=g)
    b = (a + 0.2 * torch.randn(2, 3, 40, 40, generator=g)).clamp(0, 1)
    assert abs(float(ssim(a, a)) - 1) < 1e-5 and float(ssim(a, b)) < 0.9
    smooth = torch.full_like(a, 0.5)
    assert float(highfreq_l1(a, a)) == 0 and float(highfreq_l1(a, smooth)) > 0.05
    assert float(highfreq_l1(smooth, smooth + 0.3)) < 1e-6  # a flat colour shift has no detail
    # The perceptual term only exists when VGG16 weights (torchvision names) are on disk.
    sd = {k: v for k, v in VGG16Features().state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(1)  # the rest of a full torchvision file is ignored
    torch.save(sd, tmp_path / "vgg16.pth")
    alpha, mask = torch.ones(2, 40, 40), torch.ones(2, 40, 40)
    _, terms = ImageLoss(LossConfig(perceptual=0.1, perceptual_weights=str(tmp_path / "vgg16.pth")))(a, b, alpha, mask)
    assert terms["perceptual"] > 0 and set(terms) == {"l1", "ssim", "mask", "highfreq", "perceptual"}
    _, terms = ImageLoss(LossConfig(perceptual=0.1, perceptual_weights=str(tmp_path / "absent.pth")))(a, b, alpha, mask)
    assert "perceptual" not in terms and "no local VGG16 weights" in caplog.text


def test_validation_ssim_on_the_device_is_the_metric():
    """validate() reports SSIM from losses.ssim_map (symmetric padding) on the model's device: the values
    core.metrics.ssim (skimage, on the CPU) gives, on a real portrait crop against a blurred, shifted, noisy copy
    and against noise. torch's reflect padding (the loss term) differs at the borders."""
    import cv2

    from gaussian_head_ros.core import metrics
    from gaussian_head_ros.core.train.losses import ssim_map

    img = cv2.imread(str(shared("portraits", "astronaut_eileen_collins.png")))[:, :, ::-1]
    a = cv2.resize(img, (96, 80), interpolation=cv2.INTER_AREA).astype(np.float64) / 255
    rng = np.random.default_rng(0)
    b = np.clip(np.roll(cv2.GaussianBlur(a, (5, 5), 1.2), 2, axis=1) + rng.normal(0, 0.03, a.shape), 0, 1)
    c = rng.uniform(0, 1, a.shape)
    t = lambda *x: torch.as_tensor(np.stack(x)).permute(0, 3, 1, 2)  # noqa: E731
    got = ssim_map(t(a, a), t(b, c), mode="symmetric").mean((1, 2, 3)).numpy()
    want = np.array([metrics.ssim(a, b), metrics.ssim(a, c)])
    assert 0.3 < want[0] < 0.95 and want[1] < 0.1
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.abs(ssim_map(t(a, a), t(b, c)).mean((1, 2, 3)).numpy() - want).max() > 1e-4  # the padding matters


def test_clip_cache_and_pairs(clip_cfg):
    cfg = DataConfig(**clip_cfg)
    clips = load_clips(cfg)  # cached by the fixture: only reads
    clip = clips[0]
    assert len(clip) >= 30 and clip.vertices.shape[1:] == (478, 3) and clip.blendshapes.shape[1] == 52
    assert 0.1 < clip.masks.mean() / 255 < 0.9  # a person, and background
    ds = PairDataset(clips, 64, ["jawOpen", "eyeBlinkLeft", "noSuchShape"], length=50, cfg=cfg)
    item = ds[3]
    assert item["src_image"].shape == (3, 64, 64) and item["tgt_mask"].shape == (64, 64)
    assert 0 <= float(item["tgt_image"].min()) and float(item["tgt_image"].max()) <= 1
    assert item["coeffs"][2] == 0  # absent names count as 0, as in drive()
    c, s, t = ds.pair(3)
    assert torch.allclose(item["expression"], torch.as_tensor(clip.canonical[t] - clip.canonical[s]))
    # Coefficients in the same frame as the landmark motion: relative to the source frame.
    ds2 = PairDataset(clips, 64, ["jawOpen"], length=50, cfg=cfg)
    assert torch.allclose(ds2[3]["coeffs"], torch.as_tensor(clip.coefficients(t, ["jawOpen"]) - clip.coefficients(s, ["jawOpen"])))
    assert torch.allclose(item["src_K"][0, 0], torch.tensor(clip.K[s][0, 0] * 64 / 96))
    jaw = [clip.coefficients(k, ["jawOpen"])[0] for k in range(len(clip))]
    assert max(jaw) - min(jaw) > 0.3  # the clip opens its mouth wide: the coefficients carry it
    assert all(torch.equal(ds[3][k], item[k]) for k in item)  # reproducible


def test_a_letterboxed_clip_is_said_once_not_once_a_frame(tmp_path, caplog):
    """Data preparation frames every frame as a photo (framing.frame_photo), which logged 'photo: letterbox bars
    outside the picture ...' at INFO for each: a line a frame (~1.5M on VFHQ; user60). lp_d0 has 27 black rows
    under the jacket in every frame: one line for the clip now, the 'cached' line, saying how many frames had bars;
    a photo (reconstruct) still says its own at INFO."""
    import logging

    from gaussian_head_ros.core.facemesh import FaceMesh
    from gaussian_head_ros.core.reconstruct.framing import FramingConfig, frame_photo
    from gaussian_head_ros.core.train.data import prepare_clip
    from gaussian_head_ros.core.video import read_frames

    cfg = DataConfig(root=str(shared("driving", "lp_d0.mp4")), cache_dir=str(tmp_path), max_frames=4,
                     cache_resolution=64)
    caplog.set_level(logging.INFO, logger="gaussian_head_ros")
    prepare_clip(cfg.root, cfg)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert [m for m in said if "letterbox" in m] == [
        "cached lp_d0.mp4: 4 frames (0 skipped); letterbox bars outside the picture in 4 frames (frame 0: top 0, "
        "bottom 27, left 0, right 0 px), left out of the crops"], said
    caplog.clear()
    frame = read_frames(str(shared("driving", "lp_d0.mp4")), max_frames=1)[0].rgb
    with FaceMesh(static_image_mode=True, max_faces=1) as mesh:
        framed = frame_photo(frame, mesh, FramingConfig())
    assert framed.bars == (0, 27, 0, 0) and framed.upright_deg == 0.0
    assert "photo: letterbox bars outside the picture (top 0, bottom 27, left 0, right 0 px)" in caplog.text


def test_unseen_prior_holds_what_no_view_shows(clip_cfg):
    """The unseen-prior term weighs the head-surface / torso Gaussians the target view does not show (the back
    of the head in a frontal clip, where it projects onto the person), not those it shows (the torso's front)
    nor the face; it is ~0 for the untrained generator and grows as those
    Gaussians shrink, fade, move or change colour; its gradient reaches the generator."""
    from gaussian_head_ros.core.avatar import PART_FACE, PART_STATIC, PART_TORSO
    from gaussian_head_ros.core.model.generator import INIT_OPACITY_LOGIT
    from gaussian_head_ros.core.model.rar import build_model
    from gaussian_head_ros.core.reconstruct.template import template_faces

    cfg = DataConfig(**clip_cfg)
    clips = load_clips(cfg)
    torch.manual_seed(0)
    model = build_model(model_config(config_from_dict({"preset": "tiny"})), clips[0].vertices[0], template_faces())
    batch = torch.utils.data.default_collate([PairDataset(clips, 48, model.reenactment.names, length=2, cfg=cfg)[i]
                                              for i in range(2)])
    out, posed = model(batch["src_image"], batch["template"], batch["src_viewmat"], batch["src_K"],
                       batch["tgt_viewmat"][:, :3, :3], batch["expression"], batch["coeffs"], batch["gaze"],
                       batch["src_mask"])
    w = trainer_mod.unseen_weights(model, out, posed, batch)
    g = model.generator
    back = (g.part == PART_STATIC) & (g.normal0[:, 2] > 0.5)  # outward normal pointing away from the camera
    front_torso = (g.part == PART_TORSO) & (g.normal0[:, 2] < -0.99)
    # the back of the head where it projects onto the person in the target view; nothing the target shows
    assert float(w[:, back].max()) == 1.0 and float(w[:, back].mean()) > 0.5 and float(w[:, front_torso].mean()) < 0.05
    assert float(w[:, g.part == PART_FACE].abs().max()) == 0.0
    loss = unseen_prior_loss(out["departure"], w)
    assert float(loss.detach()) < 0.05  # untrained: at the prior
    shrunk = {**out["departure"], "log_scale": out["departure"]["log_scale"] - 1.0,
              "opacity_logit": torch.full_like(out["departure"]["opacity_logit"], INIT_OPACITY_LOGIT - 4.0)}
    assert float(unseen_prior_loss(shrunk, w).detach()) > float(loss.detach()) + 1.9  # 1 (scale) + 0.25 x 4 (opacity)
    loss.backward()
    assert float(g.mlp[-1].bias.grad.abs().sum()) > 0


@pytest.mark.slow
def test_tiny_preset_overfits_one_clip(clip_cfg, tmp_path):
    """The acceptance check: on one real clip at 64 px the loss falls to <= 50% of its start."""
    steps = 80
    cfg = config_from_dict(_cfg(clip_cfg, tmp_path, checkpoint_every=0, log_every=10, stages=[
        {"name": "stage1", "steps": steps, "resolution": 64, "batch_size": 2, "lr": 3e-3, "warmup_steps": 10}]))
    hist = np.array([v for _, v in train(cfg)["history"]])
    start, end = hist[:10].mean(), hist[-10:].mean()
    curve = [round(float(hist[i:i + 10].mean()), 4) for i in range(0, steps, 10)]
    print(f"overfit curve (mean of 10 steps): {curve}; end/start = {end / start:.3f}")
    assert len(hist) == steps and np.isfinite(hist).all()
    assert end <= 0.5 * start, curve
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    blob = read_checkpoint(tmp_path / "checkpoints" / "model.pt")
    assert blob["step"] == steps and blob["train_config"]["preset"] == "tiny" and "optimizer" not in blob


def test_two_stages_and_resume(clip_cfg, tmp_path, monkeypatch):
    """Stage 2 unfreezes the last block; an interrupted run resumes where its last checkpoint was."""
    stages = [{"name": "stage1", "steps": 3, "resolution": 48, "batch_size": 1, "lr": 1e-3, "warmup_steps": 1},
              {"name": "stage2", "steps": 3, "resolution": 64, "batch_size": 1, "lr": 1e-3, "backbone_lr": 1e-4,
               "trainable_blocks": 1, "warmup_steps": 1}]
    cfg = config_from_dict(_cfg(clip_cfg, tmp_path, stages=stages, val_every=0))  # validation would count calls
    real_step, calls = trainer_mod.training_step, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:  # stage 2, third step: after the checkpoint of step 2
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(trainer_mod, "training_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    blob = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert blob["train_state"] == {"stage_index": 1, "stage_step": 2} and blob["step"] == 5 and "optimizer" in blob
    stage1 = load_checkpoint(tmp_path / "checkpoints" / "stage1.pt")
    monkeypatch.setattr(trainer_mod, "training_step", real_step)
    res = train(cfg, resume=True)
    assert [s for s, _ in res["history"]] == [6]
    final = res["model"]
    # Stage 1 froze the backbone; stage 2 changed only its last block (and final norm).
    a, b = stage1.backbone.state_dict(), final.backbone.state_dict()
    assert torch.equal(a["blocks.0.attn.q.weight"], b["blocks.0.attn.q.weight"])
    assert not torch.equal(a["blocks.1.attn.q.weight"], b["blocks.1.attn.q.weight"])
    assert read_checkpoint(tmp_path / "checkpoints" / "model.pt")["step"] == 6
    # The random backbone was written once (checkpoints/backbone-<sha>/) and every checkpoint references it
    # with its hash, holding only the backbone tensors some stage trained (the whole backbone was in each:
    # 1.2 GB at 300m); the checkpoints/ folder moved whole still loads, to the same tensors.
    files = sorted(p.name for p in (tmp_path / "checkpoints").glob("backbone-*"))
    assert len(files) == 1
    s1, fin = (read_checkpoint(tmp_path / "checkpoints" / n) for n in ("stage1.pt", "model.pt"))
    assert s1["backbone_ref"] == fin["backbone_ref"] and s1["backbone_ref"]["path"].endswith(files[0])
    assert not [k for k in s1["model"] if k.startswith("backbone.")]
    stored = [k for k in fin["model"] if k.startswith("backbone.")]
    assert stored and all(k.startswith(("backbone.blocks.1.", "backbone.norm.")) for k in stored)
    (tmp_path / "moved").mkdir()
    (tmp_path / "checkpoints").rename(tmp_path / "moved" / "checkpoints")
    moved = load_checkpoint(tmp_path / "moved" / "checkpoints" / "model.pt").state_dict()
    assert all(torch.equal(v, moved[k]) for k, v in final.state_dict().items())
    # --resume in the moved run folder finds the backbone there too (its last.pt is past the last stage).
    again = train(config_from_dict(_cfg(clip_cfg, tmp_path / "moved", stages=stages, val_every=0)), resume=True)
    assert again["history"] == [] and all(torch.equal(v, again["model"].state_dict()[k]) for k, v in moved.items())


def test_a_stopped_run_says_what_resume_continues_from_and_an_ended_one_says_nothing_is_left(clip_cfg, tmp_path,
                                                                                             monkeypatch, caplog):
    """user60: a Ctrl-C mid-run said only 'gaussian-head train: interrupted (Ctrl-C)' (not which checkpoint --resume
    takes, nor the steps since it that are lost); a --resume logged 'resuming .../last.pt at stage 0 step 10' (the
    index of 'stage1'); and --resume of a run that had ended, given its last stage 10 more steps, logged 'resuming ...
    at stage 2 step 0', trained nothing, and wrote model.pt and config.json again with the new step counts (exit 0, no
    other word). Now the stopped run names the checkpoint and the steps taken again, the resume names the stage and
    its step, and the ended run is said ended, the stages given other steps named, its files left as they were."""
    import logging

    stage = {"name": "stage1", "steps": 5, "resolution": 48, "batch_size": 1, "lr": 1e-3, "warmup_steps": 1}
    cfg = config_from_dict(_cfg(clip_cfg, tmp_path, stages=[stage], val_every=0))  # checkpoint_every 2
    real_step, calls = trainer_mod.training_step, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:  # the fourth step: three taken, the last checkpoint at step 2
            raise KeyboardInterrupt
        return real_step(*a, **k)

    monkeypatch.setattr(trainer_mod, "training_step", interrupted)
    caplog.set_level(logging.INFO, logger="gaussian_head_ros")
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    last = tmp_path / "checkpoints" / "last.pt"
    said = caplog.text
    assert (f"stopped (Ctrl-C) at step 3 (stage1 step 3/5): --resume (same config, --set and --out) continues from "
            f"{last}, step 2 (stage1 step 2/5), the last checkpoint (every checkpoint_every = 2 steps, and at each "
            "stage's end); steps taken again: 1") in said, said
    assert trainer_mod._stopped_run(type("_Terminated", (BaseException,), {})(), cfg, last, 3, 0, 3, (2, 0, 2)) \
        .startswith("stopped (SIGTERM) at step 3 (stage1 step 3/5)")  # the CLI's SIGTERM ('stopped (_Terminated)')
    monkeypatch.setattr(trainer_mod, "training_step", real_step)
    caplog.clear()
    assert [s for s, _ in train(cfg, resume=True)["history"]] == [3, 4, 5]
    assert f"resuming {last} (step 2) at stage1 step 2/5" in caplog.text, caplog.text
    model, config = (tmp_path / "checkpoints" / "model.pt").read_bytes(), (tmp_path / "config.json").read_text()
    caplog.clear()
    longer = config_from_dict(_cfg(clip_cfg, tmp_path, stages=[{**stage, "steps": 7}], val_every=0))
    assert train(longer, resume=True)["history"] == []
    assert (f"--resume: nothing to train: {last} (step 5) is past the last stage, stage1: the run ended; its model is "
            f"{tmp_path / 'checkpoints' / 'model.pt'}, left as it was. This config gives stages other steps (stage1 5 "
            "-> 7): a stage that ended is not continued") in caplog.text, caplog.text
    assert (tmp_path / "checkpoints" / "model.pt").read_bytes() == model  # (was written again, steps 7 recorded)
    assert (tmp_path / "config.json").read_text() == config


def test_the_end_of_a_resumed_run_says_the_step_it_reached(monkeypatch, caplog, tmp_path):
    """`gaussian-head train ... --resume` of a 40-step config stopped at step 10 ended 'finished 30 steps, loss 0.7710
    -> 0.3908' (user60): the steps of this process, read as a 30-step run. It now says the step reached, the steps of
    this run and where it resumed; a run from scratch says no resume."""
    import argparse
    import logging

    from gaussian_head_ros.commands import train as train_cmd

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"preset": "tiny"}))
    args = argparse.Namespace(config=str(config), overrides=[], out_dir=None, dry_run=False, resume=True)
    caplog.set_level(logging.INFO, logger="gaussian_head_ros")
    for first, said in ((11, "finished at step 40 (30 steps this run, resumed at step 10), loss 0.7710 -> 0.3908; "
                             "model: m.pt"),
                        (1, "finished at step 40 (40 steps this run), loss 0.7710 -> 0.3908; model: m.pt")):
        hist = [(s, 0.7710 if s == first else 0.3908 if s == 40 else 0.5) for s in range(first, 41)]
        monkeypatch.setattr(trainer_mod, "train", lambda cfg, resume, h=hist: {"history": h, "checkpoint": "m.pt"})
        caplog.clear()
        assert train_cmd.run(args) == 0
        assert said in caplog.text, caplog.text


def test_peak_rss_is_the_processs_own_not_its_parents():
    """The peak memory a rank logs (and the 300m load test's probe reads) is the process's own: a child of a
    parent holding 512 MiB more reads well under the parent's size (getrusage's ru_maxrss, the old figure,
    starts a fork+exec'd child at its parent's resident size and read >= the parent's here)."""
    from gaussian_head_ros.core.memory import peak_rss_mb

    held = np.ones(2**26)  # 512 MiB, touched
    parent = peak_rss_mb()
    child = subprocess.run([sys.executable, "-c", "from gaussian_head_ros.core.memory import peak_rss_mb; "
                            "print(peak_rss_mb())"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert child.returncode == 0, child.stderr[-2000:]
    print(f"parent {parent:.0f} MiB (512 MiB held), child {float(child.stdout):.0f} MiB")
    assert float(child.stdout) < parent - 400 and held[-1] == 1


def _cli(*args, env=None, cwd=None, timeout=600):
    cmd = [sys.executable, "-m", "gaussian_head_ros.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_the_files_a_config_names_are_checked_before_any_clip_is_tracked(tmp_path):
    """user60: `gaussian-head train config/train_webssl_300m.yaml --dry-run` ('check the config') on a machine without
    its weights/ and datasets/ folders printed the config and exit 0; the real run with data.root given tracked every
    clip, then ended 'WebSSL checkpoint weights/webssl-dino300m-full2b-224 not found' (49 s for 4 clips of 4 frames:
    hours on VFHQ), and without the landmarker_model it warned 'skipping <clip>: landmarker_model ... not found' once
    per clip. Now the dry run names every missing file (exit 1, one line) and training stops on them before it tracks
    anything."""
    config = str(ROOT / "config" / "train_webssl_300m.yaml")
    dry = _cli("train", config, "--dry-run", cwd=tmp_path, timeout=300)  # the config's relative paths: absent here
    assert dry.returncode == 1, (dry.returncode, dry.stderr[-2000:])
    error = [ln for ln in dry.stderr.splitlines() if ln.startswith("gaussian-head train: error:")]
    assert error == ["gaussian-head train: error: training data folder datasets/vfhq/clips does not exist; "
                     "landmarker_model weights/face_landmarker.task not found (MediaPipe face_landmarker.task); "
                     "backbone_weights: WebSSL checkpoint weights/webssl-dino300m-full2b-224 not found (download it "
                     "yourself; see docs/TRAINING.md)"], dry.stderr[-3000:]
    cache = tmp_path / "cache"
    run = _cli("train", config, "--set", f"data.root={shared('driving')}", "--set", f"data.cache_dir={cache}",
               "--set", f"data.landmarker_model={shared('models', 'face_landmarker.task')}", "--out",
               str(tmp_path / "run"), cwd=tmp_path, timeout=300)
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == (
        "gaussian-head train: error: backbone_weights: WebSSL checkpoint weights/webssl-dino300m-full2b-224 not found "
        "(download it yourself; see docs/TRAINING.md)"), run.stderr[-3000:]
    assert "cached" not in run.stderr and not cache.exists(), run.stderr[-3000:]  # nothing tracked
    ok = _cli("train", str(ROOT / "config" / "train_tiny_cpu.yaml"), "--set", f"data.root={shared('driving')}",
              "--dry-run", cwd=tmp_path, timeout=300)
    assert ok.returncode == 0 and '"preset": "tiny"' in ok.stdout, ok.stderr[-2000:]


def test_prepare_then_two_ranks_on_a_1000_clip_index(tmp_path):
    """`gaussian-head prepare` indexes 1,000 clips (symlinks to the ../shared driving clips) and stops; then
    `torchrun --nproc_per_node 2 ... train` (gloo, CPU) starts on that index: each rank reads only its
    shard, memory-mapped; both take their first step within a minute and under 2 GB resident."""
    import re
    import time

    sources = sorted(shared("driving").glob("*.mp4"))
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(1000):
        (clips / f"clip{i:04d}.mp4").symlink_to(sources[i % len(sources)])
    cfg = _cfg({"root": str(clips), "cache_dir": str(tmp_path / "cache"), "max_frames": 6, "cache_resolution": 64,
                "val_pairs": 2}, tmp_path / "run", checkpoint_every=0, val_every=0)
    cfg["stages"][0].update(steps=2, batch_size=1)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = _cli("prepare", str(cfg_path), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1000 clips (999 train, 1 validation)" in proc.stdout, proc.stdout
    assert not (tmp_path / "run").exists()  # prepare only caches: nothing trained
    assert len([d for d in (tmp_path / "cache").iterdir() if d.is_dir()]) == len(sources)  # symlinks share a cache
    t0 = time.time()
    proc = _cli("prepare", str(cfg_path), env=env)  # resumable: a second run finds everything cached
    assert proc.returncode == 0 and time.time() - t0 < 30
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gaussian_head_ros.cli", "train", str(cfg_path)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    firsts = re.findall(r"rank (\d): first step ([\d.]+) s after start, peak RSS (\d+) MB", proc.stderr)
    shards = re.findall(r"rank (\d): (\d+) of 999 training clips", proc.stderr)
    print(f"torchrun wall {time.time() - t0:.1f} s; first steps {firsts}; shards {shards}")
    assert sorted(r for r, _, _ in firsts) == ["0", "1"] and sorted(shards) == [("0", "500"), ("1", "499")]
    for _, secs, rss in firsts:
        assert float(secs) < 60 and int(rss) < 2048
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "model.pt")["step"] == 2


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scaling_study_counts_seeds_per_preset_and_times_the_photo_and_the_frame(clip_cfg, capsys):
    """scripts/scaling_study.py: the error bars' seed count is per preset (a merged study of 2 presets x 3 seeds
    is over 3 seeds, not the 6 runs its title used to say), a preset with fewer than 3 seeds is flagged, and the
    cost table times the photo's `reconstruct` (what grows with the backbone) beside the frame's drive()."""
    from gaussian_head_ros.core.model.rar import RARModel, preset_config
    from gaussian_head_ros.core.reconstruct.template import template_faces

    study = _script("scaling_study")
    val = [{"step": 0, "loss": 0.8, "psnr": 11.0, "ssim": 0.3, "image": 0.4},
           {"step": 8, "loss": 0.7, "psnr": 12.0, "ssim": 0.4, "image": 0.3}]
    runs = [{"preset": p, "seed": s, "backbone_params": n, "params": n, "validation": val}
            for p, n, seeds in (("tiny", 1e5, (0, 1, 2)), ("small", 3e6, (0,))) for s in seeds]
    rows = study.summarise(runs)
    assert [len(r["seeds"]) for r in rows] == [3, 1] and study.seed_counts(rows) == "1-3"
    assert study.seed_counts(rows[:1]) == "3"
    printed = capsys.readouterr().out.splitlines()
    assert "fewer than 3 seeds" in printed[1] and "fewer than 3 seeds" not in printed[0]
    clips = load_clips(DataConfig(**clip_cfg))
    model = RARModel(preset_config("tiny", source_size=48), np.median(clips[0].vertices, axis=0), template_faces())
    cost = study.per_frame_cost({"tiny": model}, clips, rounds=1, repeats=1)["tiny"]
    assert cost["reconstruct_ms"] > 0 and cost["drive_ms"] > 0 and cost["gaussians"] == model.generator.num_gaussians


def _doc_commands() -> list[list[str]]:
    """Every command of docs/TRAINING.md's bash blocks, continuation lines joined, comments dropped."""
    import re
    import shlex

    text = (ROOT / "docs" / "TRAINING.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #")[0]) if line.strip() else []
            if words:
                out.append(words)
    return out


def test_training_doc_commands_are_the_tested_ones():
    """docs/TRAINING.md's commands are the ones these tests run: each `gaussian-head` / `torchrun -m
    gaussian_head_ros.cli` / `python scripts/scaling_study.py` / `python scripts/whole_head_views.py` line parses
    with the real argument parsers (placeholders filled in), and the commands test_prepare_then_two_ranks_on_a_1000_clip_index and
    test_example_configs_parse run (prepare, torchrun ... train, train --dry-run, the example configs) are the
    documented ones."""
    from gaussian_head_ros.cli import build_parser

    parser, _ = build_parser()
    scripts = {name: _script(name) for name in ("scaling_study", "whole_head_views")}
    cmds = _doc_commands()
    seen = set()
    for words in cmds:
        words = [w.replace("CONFIG", "config/train_tiny_cpu.yaml") for w in words]
        if words[0] == "gaussian-head":
            args = parser.parse_args(words[1:])
        elif words[0] == "torchrun":
            m = words.index("-m")
            assert words[m + 1] == "gaussian_head_ros.cli", words
            args = parser.parse_args(words[m + 2:])
            seen.add("torchrun " + args.command)
        elif words[0] == "python" and words[1] in ("scripts/scaling_study.py", "scripts/whole_head_views.py"):
            name = words[1][len("scripts/"):-len(".py")]
            scripts[name].build_parser().parse_args(words[2:])
            seen.add(name)
            continue
        else:
            continue
        seen.add(args.command)
        if args.command in ("train", "prepare"):
            cfg = ROOT / args.config
            assert cfg.is_file(), f"TRAINING.md names a config that does not exist: {args.config}"
            seen.add(f"{args.command} {cfg.name}")
    for needed in ("prepare", "train", "torchrun train", "reconstruct", "scaling_study", "whole_head_views",
                   "train train_webssl_300m.yaml", "prepare train_webssl_300m.yaml"):
        assert needed in seen, f"TRAINING.md no longer shows '{needed}', which the tests run"
