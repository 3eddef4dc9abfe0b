"""Shot cuts in the model: the detector finds the toy world's cuts in the frame encoder's own
32×32 input, features never look across a cut, and the shipped model no longer knocks at cuts."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from foley_model.encoders import frames_to_float
from foley_model.model import frame_cuts
from foley_model.shots import ShotError, detect_cuts, frame_differences
from foley_model.toyworld import GenStyle, clip_seed, make_clip

CUT_STYLE = dataclasses.replace(GenStyle.heldout(), p_cut=1.0)


def cut_clips(n: int, seed: int = 4242) -> list:
    clips = [make_clip(clip_seed(seed, i), duration_s=4.0, fps=24.0, size=(96, 54), sample_rate_hz=16000,
                       style=CUT_STYLE) for i in range(n)]
    return [c for c in clips if c.cuts_s]


def first_frame_of(cut_s: float) -> int:
    return int(np.ceil(cut_s * 24 - 1e-6))  # frame k shows the picture at k / 24


def test_whole_array_and_streamed_differences_agree():
    frames = np.random.default_rng(0).integers(0, 256, (30, 54, 96, 3), dtype=np.uint8)
    frames[15:] //= 3
    assert np.array_equal(frame_differences(frames), frame_differences(iter(frames)))
    assert frame_differences(frames[:0]).shape == (0,)
    with pytest.raises(ShotError):
        frame_differences(np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ShotError):
        detect_cuts(frames, 0)


def test_the_model_finds_the_toy_worlds_cuts_in_its_own_input():
    clips = cut_clips(12)
    assert len(clips) >= 8
    x = frames_to_float(torch.from_numpy(np.stack([c.frames for c in clips])), 32)
    found = frame_cuts(x)
    for c, got in zip(clips, found):
        want = [first_frame_of(t) for t in c.cuts_s]
        assert got == want, f"clip {c.seed}: cuts at frames {want}, found {got}"
    assert frame_cuts(x[:, :, :, :8, :8]) == [[] for _ in clips]  # too small to judge: no split


def test_features_before_a_cut_do_not_see_the_next_shot(tiny_model):
    (clip,) = cut_clips(3)[:1]
    k = first_frame_of(clip.cuts_s[0])
    frames = torch.from_numpy(clip.frames)[None]  # (1, T, H, W, 3)
    other = torch.from_numpy(cut_clips(8, seed=99)[-1].frames)[None]
    swapped = frames.clone()
    swapped[:, k:] = other[:, k:]  # a different second shot
    swapped[:, k - 1] = frames[:, k - 1]  # (the detector must still see a cut at k)
    m = tiny_model
    x, y = (frames_to_float(f, m.cfg.encoders.frame_size) for f in (frames, swapped))
    assert frame_cuts(x) == frame_cuts(y) == [[k]]
    with torch.no_grad():
        fx, fy = m.encode_frames(x), m.encode_frames(y)
        assert torch.equal(fx[:, :k], fy[:, :k]), "features of the first shot depend on the second"
        assert not torch.equal(fx[:, k:], fy[:, k:])
        plain = m.frame_encoder(x)
        assert not torch.allclose(plain[:, k - 3:k], m.frame_encoder(y)[:, k - 3:k]), \
            "without splitting the last frames before a cut see the next shot (the test would not fail)"
        # a batch item without a cut is encoded exactly as without splitting
        calm = torch.cat([x[:, :k], x[:, :k]])
        assert frame_cuts(calm) == [[], []]
        assert torch.equal(m.encode_frames(calm), m.frame_encoder(calm))


def test_the_shipped_model_does_not_knock_at_picture_cuts():
    """Flux at cuts over flux elsewhere, single 4 s windows: the ground truth scores ~1.6 (a new
    scene's ambience starts). Encoding the picture per shot took the shipped model from ~14 to
    ~1.6 (40 clips); without splitting this test's clips score far above the bound."""
    from foley_model.checkpoint import default_checkpoint_path, load_checkpoint
    from foley_model.eval_run import render_clips
    from foley_model.evaluation import cut_flux_ratio

    torch.set_num_threads(2)
    model, _ = load_checkpoint(default_checkpoint_path())
    model.eval()
    clips = cut_clips(20)
    truth, n_truth = cut_flux_ratio([c.audio for c in clips], 16000, clips)
    ratios = {}
    for split in (True, False):
        model.cfg = dataclasses.replace(model.cfg, encoders=dataclasses.replace(model.cfg.encoders, shot_split=split))
        with torch.no_grad():
            audio = [a for b in range(0, len(clips), 10) for a in render_clips(model, clips[b:b + 10], "model")]
        ratios[split] = cut_flux_ratio(audio, 16000, clips)[0]
    assert n_truth >= 10 and 1.0 < truth < 2.5, (truth, n_truth)
    assert ratios[True] <= 3.0, ratios
    assert ratios[False] >= 2 * ratios[True], ratios


def test_training_clips_carry_the_cuts_the_encoder_would_find(tiny_model):
    """The clip generator finds each training clip's cuts (off the training loop) on the resized
    uint8 frames the batch holds; they equal what the model would find itself, and passing them
    gives the same features."""
    import random

    from foley_model.data import _area_resize_uint8
    from foley_model.train import Batch

    clips = cut_clips(6)[:3]
    items = []
    for c in clips:
        frames = _area_resize_uint8(c.frames, 32)
        items.append({"frames": frames, "cuts": detect_cuts(frames, 24.0), "audio": c.audio, "caption": c.caption})
    batch = Batch(items, random.Random(0))
    x = frames_to_float(batch.frames, 32)
    assert batch.shot_starts == frame_cuts(x) and any(batch.shot_starts)
    with torch.no_grad():
        assert torch.equal(tiny_model.encode_frames(x, batch.shot_starts), tiny_model.encode_frames(x))
    assert Batch([{k: v for k, v in it.items() if k != "cuts"} for it in items], random.Random(0)).shot_starts is None


def test_frames_past_the_end_are_clamped_features_not_a_held_picture(tiny_model):
    """frames_valid: an item's frames past the video's end (a held picture) are not encoded; the last real
    frame's features stand for them, as a training clip's end looks, and the other items are untouched."""
    (clip,) = cut_clips(3)[:1]
    m = tiny_model
    k = first_frame_of(clip.cuts_s[0])
    x = frames_to_float(torch.from_numpy(clip.frames[:k])[None], m.cfg.encoders.frame_size)  # (1, k, 3, S, S)
    assert frame_cuts(x) == [[]]  # one shot: no cut holds its edge frames already
    v = x.shape[1] - 8
    held = torch.cat([x[:, :v], x[:, v - 1:v].expand(1, 8, *x.shape[2:])], dim=1)  # the last picture held
    both = torch.cat([held, x])  # item 0 ends early, item 1 is real to its last frame
    with torch.no_grad():
        plain = m.encode_frames(both)
        assert torch.equal(m.encode_frames(both, frames_valid=[x.shape[1]] * 2), plain)  # all real: as before
        got = m.encode_frames(both, frames_valid=[v, x.shape[1]])
        alone = m.encode_frames(x[:, :v])  # the real frames alone (cuts before v found in them too)
        assert torch.equal(got[0, :v], alone[0])
        assert torch.equal(got[0, v:], alone[0, -1:].expand(8, -1))
        assert torch.equal(got[1], plain[1])
        assert not torch.allclose(plain[0, v - 3:v], got[0, v - 3:v]), \
            "the held picture does not reach the last real frames' features (the test would not fail)"
