"""The trainer: the auxiliary sync loss, a short real run of every stage, and resuming it."""
from __future__ import annotations

import json
import random

import pytest
import torch

from foley_model.checkpoint import load_checkpoint, read_card
from foley_model.configs import get_config
from foley_model.train import DEFAULT_STAGES, Batch, Trainer, train

from .conftest import pool_items


def _trainer(tmp_path, **train_overrides) -> Trainer:
    import dataclasses
    cfg = get_config("tiny")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train_overrides))
    return Trainer(cfg, tmp_path, 0, 1.0, ("dit",), False, 2, 100, lambda s: None, "test")


def test_onset_strength_peaks_at_the_ground_truth_onsets(tmp_path):
    torch.manual_seed(0)
    items = [it for it in pool_items(12) if any(e.kind == "impact" for e in it["events"])]
    assert items
    tr = _trainer(tmp_path)
    strength = Batch(items, random.Random(0)).onset_strength(tr.model)  # (B, T)
    rate = tr.cfg.latent_rate_hz
    hits = total = 0
    for b, it in enumerate(items):
        s = strength[b]
        top = set(torch.topk(s, k=min(len(s), 2 * len(it["events"]) + 2)).indices.tolist())
        for e in it["events"]:
            if e.kind != "impact":
                continue
            j = int(round(e.onset_s * rate))
            total += 1
            hits += any(k in top for k in range(j - 1, j + 2))
    assert hits / total >= 0.8, (hits, total)


def test_the_sync_aux_loss_reaches_the_frame_encoder_and_can_be_switched_off(tmp_path):
    torch.manual_seed(0)
    items = pool_items(4)
    on = _trainer(tmp_path / "on")
    loss = on.dit_step_loss(Batch(items, random.Random(0)))
    assert set(on.last_parts) == {"flow", "sync_aux"}
    assert abs(float(loss.detach()) - (on.last_parts["flow"] + on.last_parts["sync_aux"])) < 1e-4
    # the aux term alone puts gradient into the frame CNN (the DiT's output layers start at zero)
    on.model.zero_grad()
    on.sync_aux.zero_grad()
    loss.backward()
    g = on.model.frame_encoder.convs[0].weight.grad
    assert g is not None and float(g.abs().sum()) > 0
    off = _trainer(tmp_path / "off", sync_aux_weight=0.0)
    off.dit_step_loss(Batch(items, random.Random(0)))
    assert set(off.last_parts) == {"flow"}


def test_a_short_run_trains_every_stage_logs_and_resumes(tmp_path):
    out = tmp_path / "run"
    ckpt = train("tiny", minutes=0.4, out_dir=out, seed=3, threads=2, save_every=5, print_fn=lambda s: None,
                 command="foley train --variant tiny --minutes 0.4")
    card = read_card(ckpt)
    assert sorted(card["stages_done"]) == sorted(DEFAULT_STAGES)
    assert all(card["steps_per_stage"][s] > 0 for s in DEFAULT_STAGES), card["steps_per_stage"]
    records = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    dit = [r for r in records if r["stage"] == "dit"]
    assert dit and {"flow", "sync_aux"} <= set(dit[0]), dit[:1]
    model, _ = load_checkpoint(ckpt)
    assert not any(k.startswith("sync_aux") for k in model.state_dict())  # the training head is not shipped
    # resuming a finished run does no more steps and writes the same checkpoint
    steps = dict(card["steps_per_stage"])
    lines: list[str] = []
    train("tiny", minutes=0.4, out_dir=out, seed=3, threads=2, print_fn=lines.append, command="again")
    assert read_card(ckpt)["steps_per_stage"] == steps
    assert any("already done" in s for s in lines), lines
    # the opt-in decoder stage on the same run refines the Mel-VAE decoder and nothing else: the
    # encoder (the latent space the DiT learned) and everything outside the VAE stay bit-identical
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train("tiny", minutes=0.08, out_dir=out, seed=3, threads=2, stages=("decoder",), print_fn=lambda s: None,
          command="foley train --stage decoder")
    card = read_card(ckpt)
    assert card["steps_per_stage"]["decoder"] > 0 and "decoder" in card["stages_done"]
    after, _ = load_checkpoint(ckpt)
    dec_ids = {id(p) for p in after.vae.decoder_parameters()}
    decoder = {n for n, p in after.vae.named_parameters() if id(p) in dec_ids}
    assert decoder and {f"vae.{n}" for n, _ in after.vae.named_parameters()} - {f"vae.{n}" for n in decoder}
    changed = {k for k, v in after.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= {f"vae.{n}" for n in decoder}, sorted(changed)[:5]


def test_the_decoder_stage_decodes_latents_the_dit_sampled_from_noised_true_latents(tmp_path):
    torch.manual_seed(0)
    items = pool_items(3)
    tr = _trainer(tmp_path, decoder_from_t=(0.9, 0.9))
    # a distinct EMA: the sampler copy must run the EMA weights, never the live ones, and leave them alone
    live = tr.dit_params()
    tr.state["ema"] = {k: v.detach() + 0.01 for k, v in live.items()}
    gen = tr._ema_model()
    name = next(iter(tr.state["ema"]))
    assert torch.equal(dict(gen.named_parameters())[name], tr.state["ema"][name])
    assert not torch.equal(live[name], tr.state["ema"][name])
    # an untrained DiT's output layers are zero, so the sampler adds nothing: what comes back is the
    # true latents noised to t = 0.9 (the one grid point allowed here), with the torch RNG's noise
    tr.state["ema"] = None
    batch = Batch(items, random.Random(0))
    z = batch.latents(tr.model)  # (B, T, C)
    torch.manual_seed(7)
    out, mel = tr._generated_pair(tr._ema_model(), batch)
    torch.manual_seed(7)
    noise = torch.randn_like(z)
    assert out.shape == z.shape and mel.shape == (3, tr.cfg.audio.n_mels, 2 * z.shape[1])
    assert torch.allclose(out, 0.9 * z + 0.1 * noise, atol=1e-5)
    # the target is the clip's own mono mel, the one its true latents encode
    assert torch.allclose(tr.model.vae.encode(mel)[0], z, atol=1e-5)
    # a range between grid points (or at t = 1, where nothing is left to sample) is refused, not rounded
    narrow = _trainer(tmp_path / "narrow", decoder_from_t=(0.93, 1.0))
    with pytest.raises(ValueError, match="decoder_from_t"):
        narrow._generated_pair(narrow._ema_model(), batch)
