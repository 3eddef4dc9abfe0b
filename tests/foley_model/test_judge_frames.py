"""The picture judge's own, finer frame CNN: how it joins the judge, the frames it reads, its training stage,
and checkpoints from before it."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch

from foley_model.checkpoint import load_checkpoint, read_card, save_checkpoint
from foley_model.configs import JudgeConfig, config_from_dict, config_to_dict, get_config
from foley_model.judge import PictureOnsetJudge
from foley_model.model import FoleyModel
from foley_model.train import Batch, Trainer, train

from .conftest import pool_items, randomize_


def _frames(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, n, 54, 96, 3), dtype=torch.uint8, generator=g)


def test_a_fresh_frame_cnn_leaves_the_judge_as_it_was_until_it_is_trained():
    torch.manual_seed(0)
    cfg = JudgeConfig(dropout=0.0)
    assert cfg.frame_size == 48
    judge = PictureOnsetJudge(cfg, 32).eval()
    plain = PictureOnsetJudge(dataclasses.replace(cfg, frame_size=0), 32).eval()
    plain.load_state_dict({k: v for k, v in judge.state_dict().items() if not k.startswith("frames")})
    feats = torch.randn(2, 80, 32)
    with torch.no_grad():
        a = judge(feats, torch.randn(2, 80, cfg.hidden))
        b = judge(feats, torch.randn(2, 80, cfg.hidden))
        assert torch.equal(a, b) and torch.allclose(a, plain(feats), atol=1e-6)
        judge.frames_in.weight.normal_()
        assert not torch.allclose(judge(feats, torch.randn(2, 80, cfg.hidden)), a)


def test_the_judge_reads_its_own_frames_at_its_size_and_split_at_the_same_shots(tiny_model):
    m = tiny_model
    fine = _frames(40, 3)
    own = m.judge_frame_features(fine, [[]])
    assert own.shape == (1, 40, m.cfg.judge.hidden)
    # frames given finer than the 32 px ones: the judge's input changes, the shared features do not
    with torch.no_grad():
        coarse = torch.nn.functional.interpolate(fine[0].permute(0, 3, 1, 2).float(), size=(32, 32), mode="area")
        coarse = coarse.round().to(torch.uint8).permute(0, 2, 3, 1)[None]
        a = m.prepare_conditions(coarse, [""], [0.3], [1.0], frames_start_s=[0.0])
        b = m.prepare_conditions(coarse, [""], [0.3], [1.0], frames_start_s=[0.0], judge_frames=fine)
    assert torch.equal(a.sync, b.sync) and not torch.allclose(a.onset_prob, b.onset_prob)
    # a cut: features on each side are what that shot alone gives
    cut = torch.cat([_frames(20, 4), _frames(20, 5)], dim=1)
    shot, ctx = _frames(20, 4), m.judge.frames.frame_context
    held = torch.cat([shot[:, :1].expand(1, ctx, -1, -1, -1), shot, shot[:, -1:].expand(1, ctx, -1, -1, -1)], dim=1)
    with torch.no_grad():
        split = m.judge_frame_features(cut, [[20]])
        assert not torch.allclose(split, m.judge_frame_features(cut, [[]]))
        assert torch.allclose(split[:, :20], m.judge_frame_features(held, [[]])[:, ctx:ctx + 20], atol=1e-5)


def test_without_the_cue_the_dit_stage_does_not_run_the_judge(tiny_model):
    with torch.no_grad():
        cond = tiny_model.prepare_conditions(_frames(60, 6), [""], [0.2], [2.0], frames_start_s=[0.0], cue=False)
    assert cond.cue is None and cond.onset_prob is None


def test_a_config_from_before_the_judges_frame_cnn_loads_without_one():
    old = config_to_dict(get_config("tiny"))
    del old["judge"]["frame_size"]
    cfg = config_from_dict(old)
    assert cfg.judge.frame_size == 0 and cfg.judge.hidden > 0
    m = FoleyModel(cfg)
    assert m.judge.frames is None and m.judge_frame_features(_frames(10, 1), [[]]) is None
    assert FoleyModel(get_config("tiny")).judge.frames is not None
    assert get_config("kling").judge.frame_size == 0


def test_batches_mirror_the_judges_frames_with_the_others():
    items = pool_items(2)
    for seed in range(6):
        b = Batch(items, random.Random(seed))
        for k, it in enumerate(items):
            flipped = not np.array_equal(b.frames[k].numpy(), it["frames"])
            want = it["frames_judge"][:, :, ::-1] if flipped else it["frames_judge"]
            assert np.array_equal(b.frames_judge[k].numpy(), want)
    assert Batch([{k: v for k, v in it.items() if k != "frames_judge"} for it in items],
                 random.Random(0)).frames_judge is None


def test_the_judge_stage_seeds_its_cnn_from_the_frame_encoder_and_trains_only_the_judge(tmp_path):
    torch.manual_seed(0)
    card = {"variant": "tiny", "stages_done": ["vae", "dit"], "training_command": "foley train --minutes 1",
            "steps_per_stage": {"vae": 5, "dit": 7}, "clips_generated": 40}
    src = save_checkpoint(randomize_(FoleyModel(get_config("tiny"))), tmp_path / "src", card)
    seeded = Trainer(get_config("tiny"), tmp_path / "r0", 0, 1.0, ("judge",), True, 2, 100, lambda s: None, "t", src)
    seeded._seed_judge_cnn()
    for mine, shared in zip(seeded.model.judge.frames.convs, seeded.model.frame_encoder.convs):
        assert torch.equal(mine.weight, shared.weight)
    before = {k: v.clone() for k, v in load_checkpoint(src)[0].state_dict().items()}
    ckpt = train("tiny", minutes=0.3, out_dir=tmp_path / "run", stages=("judge",), threads=2, init_from=src,
                 print_fn=lambda s: None, command="foley train --stage judge --init-from src")
    assert read_card(ckpt)["steps_per_stage"]["judge"] > 0
    after = load_checkpoint(ckpt)[0].state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, before[k])}
    assert any(k.startswith("judge.frames.") for k in changed) and any(k.startswith("judge.blocks.") for k in changed)
    assert not [k for k in changed if not k.startswith("judge.")], sorted(changed)[:5]
