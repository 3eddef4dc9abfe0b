"""The picture onset judge: peaks, scoring, choosing among candidates, its training stage, and starting a run from a checkpoint."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from foley_model.checkpoint import load_checkpoint, read_card, save_checkpoint
from foley_model.configs import JudgeConfig, get_config
from foley_model.data import _area_resize_uint8
from foley_model.judge import (PictureOnsetJudge, candidate_score, choose, onset_targets, peak_frames, plan_segments,
                               segment_weights)
from foley_model.model import FoleyModel
from foley_model.toyworld import GenStyle, clip_seed, make_clip
from foley_model.train import Trainer, train

CFG = JudgeConfig(offset_weight=0.0)  # counts only; the offset term has a test of its own


def test_peaks_are_local_maxima_above_the_threshold_and_the_stronger_wins_a_close_pair():
    p = np.zeros(40)
    p[5], p[7], p[20], p[30] = 0.6, 0.9, 0.45, 0.7  # 5 and 7 are closer than 3 frames: 7 is stronger
    assert peak_frames(p, 0.5, 3).tolist() == [7, 30]
    assert peak_frames(p, 0.4, 3).tolist() == [7, 20, 30]
    assert peak_frames(p, 0.4, 1).tolist() == [5, 7, 20, 30]
    assert peak_frames(np.full(10, 0.9), 0.5, 3).size == 0  # a plateau has no onset
    assert peak_frames(np.array([0.9]), 0.5, 3).size == 0


def test_a_sound_the_picture_does_not_show_costs_more_than_a_missed_one():
    picture = [0.5, 1.0, 2.0]
    assert candidate_score([0.51, 1.02, 1.98], picture, CFG) == 3.0
    missed = candidate_score([0.5, 1.0], picture, CFG)
    extra = candidate_score([0.5, 1.0, 2.0, 3.0], picture, CFG)
    late = candidate_score([0.5, 1.0, 2.08], picture, CFG)  # outside 50 ms: one extra and one missed
    assert missed == 1.0 and extra == 3.0 - CFG.extra_weight and late == 2.0 - CFG.extra_weight - 1.0
    assert choose([[0.5, 1.0, 2.0, 3.0], [0.5, 1.0], [0.5, 1.0, 2.0]], picture, CFG) == 2
    assert choose([[0.5], [1.0], [2.0]], picture, CFG) == 0  # equal scores: candidate 0


def test_the_offset_term_prefers_the_candidate_closer_to_the_picture_among_equal_counts():
    picture = [0.5, 1.0, 2.0]
    cfg = dataclasses.replace(CFG, offset_weight=1.0)
    exact, near, far = [0.5, 1.0, 2.0], [0.51, 1.0, 1.98], [0.54, 1.04, 2.04]
    assert candidate_score(exact, picture, cfg) == 3.0
    assert np.isclose(candidate_score(far, picture, cfg), 3.0 - 3 * 0.04 / 0.05)
    assert choose([far, near, exact], picture, cfg) == 2 and choose([far, near], picture, cfg) == 1
    # counts still come first: a far match beats an extra sound, and a pair at the tolerance's edge
    # counts as nothing (0), between a miss (-1) and an exact match (+1)
    assert choose([[0.5, 1.0, 2.0, 3.0], far], picture, cfg) == 1
    assert np.isclose(candidate_score([0.5, 1.0, 2.05], picture, cfg), candidate_score([0.5, 1.0], picture, cfg) + 1)
    assert candidate_score(far, picture, CFG) == 3.0  # weight 0: as before


def test_targets_peak_at_each_onset_and_the_judge_keeps_the_time_axis():
    rate = 62.5
    times = torch.arange(100, dtype=torch.float32)[None].expand(2, -1) / rate
    y = onset_targets([[0.4, 1.2], []], times, rate, 0.8)
    assert y.shape == (2, 100) and float(y[1].abs().max()) == 0.0
    assert set(peak_frames(y[0].numpy(), 0.5, 3).tolist()) == {25, 75}
    judge = PictureOnsetJudge(CFG, 32).eval()
    assert judge(torch.randn(3, 57, 32)).shape == (3, 57)
    # a feature that changes at frame 30 changes no logit farther than the receptive field from it
    f = torch.randn(1, 100, 32)
    g = f.clone()
    g[0, 30] += 5.0
    with torch.no_grad():
        d = (judge(f) - judge(g)).abs()[0]
    assert float(d[30 - judge.context:30 + judge.context + 1].max()) > 0
    assert float(torch.cat([d[:30 - judge.context], d[30 + judge.context + 1:]]).max()) == 0.0


def test_the_judge_learns_onsets_from_features_on_a_fixed_batch():
    torch.manual_seed(0)
    rate = 62.5
    feats = torch.randn(8, 120, 16)
    onsets = [list(np.flatnonzero(feats[b, :, 0].numpy() > 1.5) / rate) for b in range(8)]
    times = torch.arange(120, dtype=torch.float32)[None].expand(8, -1) / rate
    target = onset_targets(onsets, times, rate, 0.8)
    judge = PictureOnsetJudge(dataclasses.replace(CFG, dropout=0.0), 16)
    opt = torch.optim.Adam(judge.parameters(), 3e-3)
    first = float(judge.loss(feats, target))
    for _ in range(60):
        loss = judge.loss(feats, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(judge.loss(feats, target)) < 0.6 * first


def test_sampling_candidates_keeps_one_each_window_would_get_alone(tiny_model):
    m = tiny_model
    B, T, C = 2, m.cfg.latent_frames(2.0), m.cfg.vae.latent_channels
    frames = torch.randint(0, 255, (B, 60, 32, 32, 3), dtype=torch.uint8)
    cond = m.prepare_conditions(frames, ["a knock", ""], [0.2, 0.2], [2.0, 2.0], frames_start_s=[0.0, 0.0])
    assert cond.onset_prob.shape == (B, 2 * T) and float(cond.onset_prob.min()) >= 0
    noises = torch.randn(3, B, T, C, generator=torch.Generator().manual_seed(1))
    lat, chosen = m.sample_candidates(cond, noises, steps=3, choose_per="window")
    assert lat.shape == (B, T, C) and chosen.shape == (B,)
    for b in range(B):
        alone = m.sample_latents(cond, noises[:, b][int(chosen[b])][None].expand(B, T, C).clone(), steps=3)[b]
        assert torch.allclose(lat[b], alone, atol=1e-4)
    # the choice is the judge's: the candidates' onsets scored against the picture's peaks
    again = m.choose_candidates(torch.stack([m.sample_latents(cond, noises[k], steps=3) for k in range(3)]), cond)
    assert torch.equal(again, chosen)
    one, idx = m.sample_candidates(cond, noises[:1], steps=3)
    assert torch.equal(one, m.sample_latents(cond, noises[0], steps=3)) and idx.tolist() == [0, 0]


def test_segments_take_each_stretch_from_the_candidate_that_got_it_right():
    cfg = dataclasses.replace(CFG, segment_switch_cost=0.5, segment_gap_s=0.4)
    picture = [0.5, 1.5, 2.5, 3.5]
    a = [0.5, 1.5, 3.0]  # right in the first half, a sound the picture does not show at 3.0
    b = [1.0, 2.5, 3.5]  # a sound at 1.0 the picture does not show, right in the second half
    assert plan_segments([a, b], picture, cfg) == [(0.0, 0), (2.0, 1)]  # cut halfway between 1.5 and 2.5
    # with a cost above the gain, or onsets closer than the gap, it is one candidate for the window: `choose`'s
    c = [0.5, 1.5, 2.5]
    for cost in (1e9, 50.0):
        assert plan_segments([a, b, c], picture, dataclasses.replace(cfg, segment_switch_cost=cost)) == [
            (0.0, choose([a, b, c], picture, cfg))]
    assert plan_segments([a, b], [0.5, 0.8], cfg) == [(0.0, choose([a, b], [0.5, 0.8], cfg))]
    assert plan_segments([a, b], [], cfg) == [(0.0, 0)]  # no picture onsets: fewest sounds wins (ties: 0)


def test_segment_weights_cross_fade_at_the_cut_and_sum_to_one():
    w = segment_weights([(0.0, 0), (1.0, 2)], 3, 20, 10.0, 3)  # cut at frame 10 (frame centres at .05, .15, ...)
    assert w.shape == (3, 20) and np.allclose(w.sum(0), 1.0) and not w[1].any()
    assert w[0, :9].tolist() == [1.0] * 9 and w[2, 11:].tolist() == [1.0] * 9
    assert np.allclose(w[:, 9], [2 / 3, 0, 1 / 3]) and np.allclose(w[:, 10], [1 / 3, 0, 2 / 3])
    assert np.array_equal(segment_weights([(0.0, 1)], 3, 5, 10.0, 3), np.eye(3)[[1] * 5].T)


def test_composing_candidates_blends_the_planned_segments(tiny_model):
    m = tiny_model
    B, T, C = 2, m.cfg.latent_frames(3.0), m.cfg.vae.latent_channels
    frames = torch.randint(0, 255, (B, 90, 32, 32, 3), dtype=torch.uint8)
    cond = m.prepare_conditions(frames, ["a knock", ""], [0.2, 0.2], [3.0, 3.0], frames_start_s=[0.0, 0.0])
    noises = torch.randn(3, B, T, C, generator=torch.Generator().manual_seed(2))
    assert m.cfg.sampling.choose_per == "window"  # per segment is opt-in
    lat, main = m.sample_candidates(cond, noises, steps=3, choose_per="segment")
    each = m.sample_each(cond, noises, steps=3)
    for b, (onsets, picture, real) in enumerate(m._candidate_onsets(each, cond)):
        w = segment_weights(plan_segments(onsets, picture, m.cfg.judge), 3, T,
                            m.cfg.latent_rate_hz, m.cfg.judge.segment_fade_frames)
        expect = (torch.from_numpy(w).float()[..., None] * each[:, b]).sum(0)
        assert torch.allclose(lat[b], expect, atol=1e-5) and int(main[b]) == int(w.sum(1).argmax())


def test_the_judge_stage_trains_the_judge_alone_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    base = FoleyModel(get_config("tiny"))
    src = save_checkpoint(base, tmp_path / "src", {"variant": "tiny", "stages_done": ["vae", "dit"],
                                                   "training_command": "foley train --minutes 1",
                                                   "steps_per_stage": {"vae": 5, "dit": 7}, "clips_generated": 40})
    before = {k: v.clone() for k, v in load_checkpoint(src)[0].state_dict().items()}
    ckpt = train("tiny", minutes=0.25, out_dir=tmp_path / "run", stages=("judge",), threads=2, init_from=src,
                 print_fn=lambda s: None, command="foley train --stage judge --init-from src")
    card = read_card(ckpt)
    assert card["steps_per_stage"]["judge"] > 0 and card["steps_per_stage"]["dit"] == 7
    assert {"vae", "dit", "judge"} <= set(card["stages_done"])
    assert card["training_command"] == "foley train --minutes 1 && foley train --stage judge --init-from src"
    after = load_checkpoint(ckpt)[0].state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("judge.") for k in changed), sorted(changed)[:5]


def test_the_judge_stage_reads_frozen_features_cached_on_pool_items(tmp_path):
    cfg = get_config("tiny")
    tr = Trainer(cfg, tmp_path, 0, 1.0, ("dit", "judge"), False, 2, 100, lambda s: None, "test")
    c = make_clip(clip_seed(5, 0), duration_s=4.0, fps=24.0, size=(64, 64), sample_rate_hz=16000, style=GenStyle.train())
    item = {"frames": _area_resize_uint8(c.frames, 32), "cuts": [], "onsets": [0.5]}
    f = tr._judge_feats(item)
    assert f.shape == (c.frames.shape[0], cfg.dit.width) and f.dtype == torch.float16 and not f.requires_grad
    assert tr._judge_feats(item) is f


def test_withholding_the_video_withholds_it_from_the_judge_too(tiny_model):
    from foley_model.eval_run import render_clips
    clips = [make_clip(clip_seed(9, i), duration_s=2.0, fps=24.0, size=(48, 48), sample_rate_hz=16000,
                       style=GenStyle.heldout()) for i in range(2)]
    lower = [render_clips(tiny_model, clips, "lower", steps=2, candidates=n) for n in (1, 3)]
    assert np.array_equal(lower[0], lower[1])  # no picture: candidate 0, never a choice made from the video
    model = [render_clips(tiny_model, clips, "model", steps=2, candidates=n) for n in (1, 3)]
    assert model[0].shape == model[1].shape == lower[0].shape


def test_a_config_from_before_the_judge_loads_without_one_and_samples_once():
    from foley_model.configs import config_from_dict, config_to_dict
    old = config_to_dict(get_config("tiny"))
    del old["judge"]
    old["sampling"].pop("candidates")
    cfg = config_from_dict(old)
    assert cfg.judge.hidden == 0 and cfg.sampling.candidates == 1
    assert FoleyModel(cfg).judge is None
    assert config_from_dict(config_to_dict(get_config("tiny"))) == get_config("tiny")


def test_starting_from_a_changed_checkpoint_is_refused(tmp_path):
    import json

    import pytest

    from foley_model.errors import TrainingError
    src = save_checkpoint(FoleyModel(get_config("tiny")), tmp_path / "src", {"variant": "tiny", "stages_done": ["dit"],
                                                                             "steps_per_stage": {"dit": 1}})
    card = json.loads((src / "card.json").read_text())
    (src / "card.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(TrainingError, match="corrupt or was changed"):
        Trainer(get_config("tiny"), tmp_path / "run", 0, 1.0, ("judge",), True, 2, 100, lambda s: None, "t", src)
