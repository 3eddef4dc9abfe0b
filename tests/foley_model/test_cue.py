"""The picture judge's onset cue on the DiT's sync path: where it enters, what withholds it, its training stage,
and checkpoints from before it."""
from __future__ import annotations

import random

import pytest
import torch

from foley_model.checkpoint import load_checkpoint, read_card, save_checkpoint
from foley_model.configs import config_from_dict, config_to_dict, get_config
from foley_model.errors import TrainingError
from foley_model.model import FoleyModel
from foley_model.train import Batch, Trainer, train

from .conftest import pool_items, randomize_


def _frames(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, n, 48, 80, 3), dtype=torch.uint8, generator=g)


def test_the_cue_is_the_judges_probability_and_reaches_the_dit_with_the_sync_path(tiny_model):
    m = tiny_model
    with torch.no_grad():
        cond = m.prepare_conditions(_frames(100, 1), ["a lamp"], [0.5], [3.0], frames_start_s=[0.0])
        T = cond.latent_mask.shape[1]
        assert cond.cue.shape == cond.sync.shape and float(cond.cue.abs().max()) > 0
        assert cond.onset_prob.shape == (1, 2 * T)
        expect = m.cue_in(cond.onset_prob.reshape(1, T, 2))
        assert torch.allclose(cond.cue, expect, atol=1e-6)
        assert torch.equal(cond.dit_args()[1], cond.sync + cond.cue)
        # withheld with the sync path (the CFG branch, video withheld) or alone (cue dropout in training)
        none, yes = torch.zeros(1, dtype=torch.bool), torch.ones(1, dtype=torch.bool)
        assert float(m.unconditional(cond).cue.abs().max()) == 0.0
        alone = m.drop(cond, none, none, yes)
        assert float(alone.cue.abs().max()) == 0.0 and torch.equal(alone.sync, cond.sync)
        x, t = torch.randn(1, T, 8), torch.tensor([0.5])
        assert not torch.allclose(m.velocity(x, t, alone), m.velocity(x, t, cond))


def test_a_fresh_cue_changes_nothing_until_it_is_learned():
    torch.manual_seed(0)
    m = FoleyModel(get_config("tiny")).eval()
    with torch.no_grad():
        cond = m.prepare_conditions(_frames(60, 2), [""], [0.0], [2.0])
        assert float(cond.cue.abs().max()) == 0.0


def test_a_window_cut_from_a_longer_one_gets_the_same_cue_from_frame_context_frames(tiny_model):
    m, rate = tiny_model, tiny_model.cfg.latent_rate_hz
    assert m.frame_context > m.frame_encoder.frame_context  # the judge's receptive field on top
    frames = _frames(130, 7)
    with torch.no_grad():
        whole = m.prepare_conditions(frames, [""], [0.0], [5.0], frames_start_s=[0.0])
        s0, n = 37, 60
        k0 = 28 - m.frame_context
        sub = m.prepare_conditions(frames[:, k0:], [""], [s0 / rate], [n / rate], frames_start_s=[k0 / 24])
        assert torch.allclose(sub.onset_prob[0], whole.onset_prob[0, 2 * s0:2 * (s0 + n)], atol=1e-5)
        assert torch.allclose(sub.cue[0], whole.cue[0, s0:s0 + n], atol=1e-5)


def test_a_config_from_before_the_cue_loads_without_one():
    old = config_to_dict(get_config("tiny"))
    del old["judge"]["cue"]
    cfg = config_from_dict(old)
    assert not cfg.judge.cue and cfg.judge.hidden > 0
    m = FoleyModel(cfg)
    assert m.cue_in is None and m.frame_context == m.frame_encoder.frame_context
    assert get_config("tiny").judge.cue and FoleyModel(get_config("tiny")).cue_in is not None
    assert get_config("kling").judge.hidden == 0  # no judge over pretrained features, so no cue


def test_the_dit_stage_withholds_the_cue_and_the_cue_stage_trains_it(tmp_path):
    torch.manual_seed(0)
    tr = Trainer(get_config("tiny"), tmp_path, 0, 1.0, ("dit",), False, 2, 100, lambda s: None, "test")
    randomize_(tr.model)
    items = pool_items(4)
    tr.dit_step_loss(Batch(items, random.Random(0))).backward()
    assert all(p.grad is None or float(p.grad.abs().max()) == 0.0 for p in tr.model.cue_in.parameters())
    assert set(tr.last_parts) == {"flow", "sync_aux"}
    tr.model.zero_grad(set_to_none=True)
    tr.dit_step_loss(Batch(items, random.Random(0)), cue=True).backward()
    assert float(tr.model.cue_in[0].weight.grad.abs().max()) > 0
    assert set(tr.last_parts) == {"flow"}  # the frame encoder is frozen there: no auxiliary loss
    assert all(p.grad is None for p in tr.model.judge.parameters())


def test_the_cue_stage_needs_a_trained_judge_and_freezes_what_the_judge_reads(tmp_path):
    torch.manual_seed(0)
    card = {"variant": "tiny", "stages_done": ["vae", "dit"], "training_command": "foley train --minutes 1",
            "steps_per_stage": {"vae": 5, "dit": 7}, "clips_generated": 40}
    no_judge = save_checkpoint(FoleyModel(get_config("tiny")), tmp_path / "nojudge", card)
    with pytest.raises(TrainingError, match="no trained judge"):
        Trainer(get_config("tiny"), tmp_path / "r0", 0, 1.0, ("cue",), True, 2, 100, lambda s: None, "t", no_judge)
    # a DiT with non-zero layers (a fresh one's zero adaLN would pass no gradient to the cue for a few steps)
    src = save_checkpoint(randomize_(FoleyModel(get_config("tiny"))), tmp_path / "src",
                          {**card, "stages_done": ["vae", "dit", "judge"],
                           "steps_per_stage": {"vae": 5, "dit": 7, "judge": 3}})
    before = {k: v.clone() for k, v in load_checkpoint(src)[0].state_dict().items()}
    ckpt = train("tiny", minutes=0.2, out_dir=tmp_path / "run", stages=("cue",), threads=2, init_from=src,
                 print_fn=lambda s: None, command="foley train --stage cue --init-from src")
    out = read_card(ckpt)
    assert out["steps_per_stage"]["cue"] > 0 and "cue" in out["stages_done"]
    after = load_checkpoint(ckpt)[0].state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, before[k])}
    assert any(k.startswith("cue_in.") for k in changed)
    frozen = ("frame_encoder.", "judge.", "vae.", "stereo.", "neural_vocoder.")
    assert not [k for k in changed if k.startswith(frozen)], sorted(changed)[:5]
