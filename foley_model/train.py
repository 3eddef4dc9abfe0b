"""Staged, resumable training on the toy world: VAE -> DiT (+ jointly trained encoders) -> picture onset
judge -> cue (the DiT refined on the judge's onset cue, frame encoder and judge frozen) -> Mono2Stereo
-> neural vocoder, plus an opt-in `decoder` stage (the Mel-VAE decoder refined with the encoder frozen,
so it can run after the DiT without touching the latent space the DiT learned). Each stage gets a share
of the time budget; state is saved every `save_every` steps, at the end of each stage, on SIGINT/SIGTERM
and when the budget runs out; `resume=True` continues from `out_dir/state.pt`. Writes progress lines,
`out_dir/loss.jsonl`, and the final checkpoint (`out_dir/checkpoint/`: model.safetensors + card.json).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint, save_checkpoint
from .configs import ModelConfig, get_config
from .data import ClipPool
from .errors import CheckpointError, TrainingError
from .flow_matching import interpolate, masked_mse, sample_t_logit_normal
from .model import FoleyModel
from .vae import MelDiscriminator, discriminator_loss

log = logging.getLogger(__name__)
STAGES = ("vae", "dit", "decoder", "judge", "cue", "stereo", "vocoder")  # every stage, in the order a run takes them
DEFAULT_STAGES = ("vae", "dit", "judge", "cue", "stereo", "vocoder")  # a run without --stage (decoder is opt-in)
JUDGE_BATCH = 64  # the judge's steps are cheap (cached frame features): bigger batches
ONSET_SCALE = 2.0  # mel flux (normalised log-mel units per bin) -> ~1 at a clear onset (99th pct ~0.5 raw)


class Batch:
    """A training batch built from pool items (flip augmentation with channel swap)."""

    def __init__(self, items: list[dict], rng: random.Random, device="cpu"):
        frames, audio, caps = [], [], []
        for it in items:
            f, a = it["frames"], it["audio"].astype(np.float32)
            if rng.random() < 0.5:  # mirror the picture and swap the stereo channels
                f, a = f[:, :, ::-1], a[::-1]
            frames.append(np.ascontiguousarray(f))
            audio.append(np.ascontiguousarray(a))
            caps.append(it["caption"])
        self.frames = torch.from_numpy(np.stack(frames)).to(device)  # (B, Tf, S, S, 3) uint8
        self.audio = torch.from_numpy(np.stack(audio)).to(device)  # (B, 2, n)
        self.captions = caps
        self.items = items
        # shot cuts per item as the frame encoder finds them (computed by the clip generator; mirroring
        # keeps them); None: let the model detect them
        cuts = [it.get("cuts") for it in items]
        self.shot_starts = None if any(c is None for c in cuts) else cuts

    @torch.no_grad()
    def latents(self, model: FoleyModel) -> torch.Tensor:
        """Standardised VAE latents (B, T, C) of the mono mix (flip-invariant), cached on the pool items."""
        self._encode(model)
        return torch.stack([it["latents"] for it in self.items])  # (B, T, C)

    @torch.no_grad()
    def onset_strength(self, model: FoleyModel) -> torch.Tensor:
        """Mel onset strength per latent frame (B, T): the larger positive spectral flux of its two mel frames."""
        self._encode(model)
        return torch.stack([it["onset"] for it in self.items])  # (B, T)

    def _encode(self, model: FoleyModel) -> None:
        todo = [i for i, it in enumerate(self.items) if "latents" not in it]
        if todo:
            mono = model.mel(self.audio[todo].mean(1))  # (b, M, Tm)
            mono = mono[..., :mono.shape[-1] // 2 * 2]
            z = model.vae.encode(mono)[0]  # (b, T, C)
            flux = F.relu(mono[..., 1:] - mono[..., :-1]).mean(1)  # (b, Tm - 1)
            flux = F.pad(flux, (1, 0)).reshape(len(todo), -1, 2).amax(-1)  # (b, T)
            for k, i in enumerate(todo):
                self.items[i]["latents"] = z[k].clone()
                self.items[i]["onset"] = ONSET_SCALE * flux[k].clone()


def _mel_targets(model: FoleyModel, audio: torch.Tensor):
    """audio (B, 2, n) -> mono normalised log-mel (B, M, T), and linear mels of L, R, mono."""
    B = audio.shape[0]
    mono_wave = audio.mean(1)  # (B, n)
    mel = model.mel
    lin = torch.einsum("mf,bft->bmt", mel.fb, mel.magnitude(torch.cat([audio[:, 0], audio[:, 1], mono_wave])))
    left, right, mono_lin = lin[:B], lin[B:2 * B], lin[2 * B:]  # (B, M, T) each
    return mel.normalise(mono_lin), left, right, mono_lin


class Trainer:
    def __init__(self, cfg: ModelConfig, out_dir: Path, seed: int, minutes: float, stages: tuple[str, ...],
                 resume: bool, threads: int, save_every: int, print_fn: Callable[[str], None], command: str,
                 init_from: Path | None = None):
        self.cfg, self.out, self.seed, self.print = cfg, out_dir, seed, print_fn
        self.save_every, self.command = save_every, command
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        self.rng = random.Random(seed)
        self.model = FoleyModel(cfg)
        D, C = cfg.dit.width, cfg.vae.latent_channels
        # training-only head of the auxiliary sync loss (not exported): sync feature -> (latents, onset)
        self.sync_aux = torch.nn.Sequential(torch.nn.Linear(D, D), torch.nn.SiLU(), torch.nn.Linear(D, C + 1))
        self.last_parts: dict = {}
        fracs = dict(cfg.train.stage_fractions)
        total = sum(fracs[s] for s in stages)
        self.budget_s = {s: 60.0 * minutes * fracs[s] / total for s in stages}
        self.stages = stages
        self.state = {"stage_done": {}, "elapsed_s": {}, "steps": {}, "clips_seen": 0, "ema": None}
        self.opt_state = None
        self.stop_requested = False
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and (self.out / "state.pt").exists():
            st = torch.load(self.out / "state.pt", map_location="cpu", weights_only=False)
            missing, unexpected = self.model.load_state_dict(st["model"], strict=False)
            if unexpected:
                raise ValueError(f"state.pt does not fit variant {cfg.name!r}: unexpected {unexpected[:5]}")
            if missing:  # modules added since the state was written start from their initialisation
                self.print(f"resume: new parameters initialised fresh: {missing}")
            self.state = st["state"]
            if st.get("sync_aux") is not None:
                self.sync_aux.load_state_dict(st["sync_aux"])
            if self.state.get("ema"):
                live = dict(self.model.named_parameters())
                for k in missing:
                    if k in live and not k.startswith(("vae.", "stereo.", "neural_vocoder.")):
                        self.state["ema"][k] = live[k].detach().clone()
            self.opt_state = st.get("opt")
            self.print(f"resumed from {self.out / 'state.pt'}: {self.state['steps']} steps, "
                       f"done {sorted(self.state['stage_done'])}")
        elif init_from is not None:
            self._init_from(init_from)
        needs = {"decoder": ("dit", "refines on latents the DiT samples"),
                 "judge": ("dit", "reads the frame encoder the DiT trains"),
                 "cue": ("judge", "teaches the DiT the trained judge's cue")}
        for stage, (before, why) in needs.items():
            if stage in stages and before not in stages and not self.state["steps"].get(before):
                name = {"dit": "DiT"}.get(before, before)
                raise TrainingError(f"the {stage} stage {why}, and {self.out} has no trained {name}: run the default "
                                    f"stages (or --stage {before}) first")
        self.loss_log = open(self.out / "loss.jsonl", "a")

    def _init_from(self, path: Path) -> None:
        """Start this run directory from a checkpoint (its weights, with the DiT's EMA already applied, and
        its card's record of stages); modules the checkpoint predates start from their initialisation."""
        try:
            source, card = load_checkpoint(path)
        except CheckpointError as exc:
            raise TrainingError(str(exc)) from None
        if card.get("variant") not in (None, self.cfg.name):
            raise TrainingError(f"checkpoint {path} is variant {card.get('variant')!r}, not {self.cfg.name!r}")
        missing, unexpected = self.model.load_state_dict(source.state_dict(), strict=False)
        if unexpected:
            raise TrainingError(f"checkpoint {path} does not fit variant {self.cfg.name!r}: unexpected {unexpected[:5]}")
        if missing:
            self.print(f"init: new parameters initialised fresh: {sorted({k.split('.')[0] for k in missing})}")
        self.state.update(stage_done={s: True for s in card.get("stages_done", [])},
                          steps=dict(card.get("steps_per_stage", {})),
                          elapsed_s={s: 60.0 * m for s, m in card.get("minutes_per_stage", {}).items() if m},
                          clips_seen=int(card.get("clips_generated", 0)), latent_stats=True,
                          earlier_commands=card.get("training_command"))
        self.print(f"initialised from checkpoint {path}: {self.state['steps']} steps")

    # ------------------------------------------------------------------ plumbing
    def save_state(self, stage: str, opt: torch.optim.Optimizer | None) -> None:
        tmp = self.out / "state.pt.tmp"
        torch.save({"model": self.model.state_dict(), "state": self.state, "sync_aux": self.sync_aux.state_dict(),
                    "opt": {"stage": stage, "state": opt.state_dict()} if opt is not None else None}, tmp)
        os.replace(tmp, self.out / "state.pt")

    def _log(self, record: dict) -> None:
        self.loss_log.write(json.dumps(record) + "\n")
        self.loss_log.flush()

    def run_stage(self, stage: str, params, step_fn: Callable[[int], tuple[float, dict]], lr: float,
                  ema_params: dict | None = None, warmup: int | None = None) -> None:
        budget = self.budget_s[stage]
        elapsed0 = self.state["elapsed_s"].get(stage, 0.0)
        if self.state["stage_done"].get(stage) and elapsed0 >= budget:
            self.print(f"[{stage}] already done, skipping")
            return
        opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
        step = self.state["steps"].get(stage, 0)
        warm = self.cfg.train.warmup_steps if warmup is None else warmup
        warm_from = 0
        loaded = False
        if self.opt_state is not None and self.opt_state.get("stage") == stage:
            try:
                opt.load_state_dict(self.opt_state["state"])
                loaded = True
            except ValueError as exc:  # parameters were added since: fresh moments
                self.print(f"[{stage}] optimizer state not reused ({exc})")
        if not loaded and step > 0:  # resumed (or extended) without this stage's optimizer moments: re-warm briefly
            warm, warm_from = 30, step
        t_start, smooth, last_print, step_start = time.time(), None, time.time(), step
        record = None
        self.print(f"[{stage}] start at step {step}, budget {budget / 60:.1f} min ({elapsed0 / 60:.1f} used)")
        while True:
            elapsed = elapsed0 + time.time() - t_start
            if elapsed >= budget or self.stop_requested:
                if not self.stop_requested:  # the budget is spent: record it so, or a resume would step once more
                    self.state["elapsed_s"][stage] = max(self.state["elapsed_s"].get(stage, 0.0), elapsed)
                break
            # the cosine runs over this run's part of the budget when a stage is extended/resumed fresh
            frac = (elapsed - (elapsed0 if warm_from else 0.0)) / (budget - (elapsed0 if warm_from else 0.0))
            cur_lr = lr * min(1.0, (step - warm_from + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g["lr"] = cur_lr
            loss, extra = step_fn(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if ema_params is not None:
                d = min(self.cfg.train.ema, (1 + step) / (10 + step))
                with torch.no_grad():
                    for name, p in ema_params["live"].items():
                        ema_params["ema"][name].mul_(d).add_(p.detach(), alpha=1 - d)
            step += 1
            lv = float(loss.detach())
            smooth = lv if smooth is None else 0.95 * smooth + 0.05 * lv
            self.state["steps"][stage] = step
            self.state["elapsed_s"][stage] = elapsed0 + time.time() - t_start
            record = {"stage": stage, "step": step, "loss": lv, "lr": cur_lr,
                      "time_s": round(self.state["elapsed_s"][stage], 2), **extra}
            if step % 10 == 0:
                self._log(record)
                record = None
            if time.time() - last_print > 15 or step == 1:
                done_s = self.state["elapsed_s"][stage] - elapsed0
                its = (step - step_start) / max(done_s, 1e-6)
                eta = budget - self.state["elapsed_s"][stage]
                self.print(f"[{stage}] step {step} loss {smooth:.4f} lr {cur_lr:.2e} {its:.2f} it/s "
                           f"elapsed {self.state['elapsed_s'][stage] / 60:.1f} min eta {eta / 60:.1f} min")
                last_print = time.time()
            if step % self.save_every == 0:
                self._apply_ema_copy(ema_params)
                self.save_state(stage, opt)
        if record is not None:  # the stage's last step, when the every-10-steps log missed it
            self._log(record)
        if not self.stop_requested:
            self.state["stage_done"][stage] = True
        self._apply_ema_copy(ema_params)
        self.save_state(stage, opt)
        self.print(f"[{stage}] {'stopped' if self.stop_requested else 'done'} at step {step} "
                   f"({self.state['elapsed_s'].get(stage, 0) / 60:.1f} min)")

    def _apply_ema_copy(self, ema_params) -> None:
        if ema_params is not None:
            self.state["ema"] = {k: v.clone() for k, v in ema_params["ema"].items()}

    # ------------------------------------------------------------------ stages
    def stage_vae(self, pool: ClipPool) -> None:
        m, B, vcfg = self.model, self.cfg.train.batch, self.cfg.vae
        # optional adversarial loss: a patch discriminator over mel joins after adv_start_fraction of the
        # stage (a training aid, not part of the checkpoint; it restarts fresh when a run is resumed)
        disc = MelDiscriminator(self.cfg.audio.n_mels) if vcfg.adversarial else None
        d_opt = torch.optim.AdamW(disc.parameters(), lr=2e-4, betas=(0.5, 0.9)) if disc is not None else None
        adv_from_s = vcfg.adv_start_fraction * self.budget_s.get("vae", 0.0)

        def step_fn(step):
            crop = self._vae_crop(pool)
            use_adv = disc is not None and self.state["elapsed_s"].get("vae", 0.0) >= adv_from_s
            extra = {}
            if use_adv:  # the discriminator's step first, on the current reconstruction
                with torch.no_grad():
                    fake = m.vae.decode(m.vae.encode(crop)[0])
                d_loss = discriminator_loss(disc, crop, fake)
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
                extra["d_loss"] = float(d_loss.detach())
            loss, parts = m.vae.loss(crop, disc if use_adv else None)
            parts.pop("reconstruction")
            return loss, {**parts, **extra}

        m.vae.train()
        self.run_stage("vae", list(m.vae.parameters()), step_fn, lr=1e-3, warmup=30)
        if not self.stop_requested and self.state.get("latent_stats") is None:
            self._latent_stats(pool)

    def _vae_crop(self, pool: ClipPool) -> torch.Tensor:
        """A batch of Mel-VAE training input: (B, M, 128) normalised log-mel crops (~2 s, even start) of the
        mono mix, or 30% of the time of one channel."""
        B = self.cfg.train.batch
        batch = Batch(pool.sample(B), self.rng)
        wave = batch.audio[torch.arange(B), torch.randint(0, 2, (B,))] \
            if self.rng.random() < 0.3 else batch.audio.mean(1)  # (B, n)
        with torch.no_grad():
            mel = self.model.mel(wave)  # (B, M, T)
        a = 2 * self.rng.randint(0, (mel.shape[-1] - 128) // 2)
        return mel[..., a:a + 128]

    def stage_decoder(self, pool: ClipPool) -> None:
        """Refine the Mel-VAE decoder with the encoder (and its latent statistics) frozen. The latents the DiT
        was trained to generate keep their meaning, so this runs after the DiT and only changes what latents
        decode to (Stable Diffusion's ft-MSE VAE refined its decoder the same way). Batches are the VAE's own
        loss on posterior samples, or (`decoder_generated_share` of them) the reconstruction loss on latents
        the DiT sampled itself (`_generated_pair`). Refined on posteriors alone with the log-domain loss, the
        decoder sharpened the codec but decoded the DiT's slightly off-manifold latents worse; with spectral
        convergence added (`decoder_sc_weight`) it decodes both with louder tones (bench/RESULTS.md
        session 18). Opt-in: `foley train --stage decoder`."""
        vae, tr = self.model.vae, self.cfg.train
        decoder = vae.decoder_parameters()
        sampler = self._ema_model() if tr.decoder_generated_share > 0 else None
        vae.requires_grad_(False)
        for p in decoder:
            p.requires_grad_(True)
        vae.train()

        def step_fn(step):
            if sampler is None or self.rng.random() >= tr.decoder_generated_share:
                loss, parts = vae.loss(self._vae_crop(pool), sc_weight=tr.decoder_sc_weight)
                parts.pop("reconstruction")
                return loss, {**parts, "generated": 0.0}
            z, target = self._generated_pair(sampler, Batch(pool.sample(tr.batch), self.rng))
            loss, parts = vae.reconstruction_loss(vae.decode(z), target, tr.decoder_sc_weight)
            return loss, {**parts, "generated": 1.0}

        try:
            self.run_stage("decoder", decoder, step_fn, lr=5e-4, warmup=30)
        finally:
            vae.requires_grad_(True)
            vae.eval()

    def _ema_model(self) -> FoleyModel:
        """A frozen copy of the model with the DiT's EMA weights (the ones the checkpoint ships)."""
        gen = copy.deepcopy(self.model).eval().requires_grad_(False)
        self._load_ema(gen)
        return gen

    @torch.no_grad()
    def _load_ema(self, model: FoleyModel) -> None:
        """Copy the DiT's EMA weights (if the DiT stage has run) into `model`'s parameters."""
        live = dict(model.named_parameters())
        for k, v in (self.state.get("ema") or {}).items():
            live[k].copy_(v)

    @torch.no_grad()
    def _generated_pair(self, gen: FoleyModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents the DiT samples for whole training clips, started from their true latents noised to a grid
        point k / steps in `decoder_from_t` (the sampler's own last steps, default CFG), and the clips' true
        mono log-mel they should decode to: (B, T, C), (B, M, 2T)."""
        cfg, sm = self.cfg, self.cfg.sampling
        z = batch.latents(self.model)  # (B, T, C) the frozen encoder's posterior means
        B, T = z.shape[:2]
        lo, hi = cfg.train.decoder_from_t
        ks = range(max(0, math.ceil(lo * sm.steps - 1e-6)), min(sm.steps - 1, math.floor(hi * sm.steps + 1e-6)) + 1)
        if not ks:
            raise ValueError(f"decoder_from_t {cfg.train.decoder_from_t} holds no point of the {sm.steps}-step grid below 1")
        k = self.rng.choice(ks)
        t = k / sm.steps
        x = interpolate(torch.randn_like(z), z, torch.full((B,), t))
        cond = gen.prepare_conditions(batch.frames, batch.captions, [0.0] * B, [T / cfg.latent_rate_hz] * B,
                                      num_latent_frames=T, shot_starts=batch.shot_starts)
        out = gen.sample_latents(cond, x, from_step=k)  # (B, T, C)
        mel = self.model.mel(batch.audio.mean(1))[..., :2 * T]  # (B, M, 2T)
        return out, mel

    @torch.no_grad()
    def _latent_stats(self, pool: ClipPool) -> None:
        m = self.model
        m.vae.latent_mean.zero_(), m.vae.latent_std.fill_(1.0)
        zs = []
        for _ in range(4):
            batch = Batch(pool.sample(16), self.rng)
            mel = m.mel(batch.audio.mean(1))
            zs.append(m.vae.encode(mel[..., :mel.shape[-1] // 2 * 2])[0].reshape(-1, self.cfg.vae.latent_channels))
        z = torch.cat(zs)
        m.vae.latent_mean.copy_(z.mean(0)), m.vae.latent_std.copy_(z.std(0).clamp_min(1e-3))
        self.state["latent_stats"] = True
        self.print(f"[vae] latent stats mean {m.vae.latent_mean.numpy().round(2)} std {m.vae.latent_std.numpy().round(2)}")
        self.save_state("vae", None)

    def dit_params(self) -> dict[str, torch.nn.Parameter]:
        skip = ("vae.", "stereo.", "neural_vocoder.", "judge.")
        return {n: p for n, p in self.model.named_parameters() if not n.startswith(skip)}

    def dit_step_loss(self, batch: Batch, cue: bool = False) -> torch.Tensor:
        """Flow-matching loss of one batch: random windows (crop, start offset), path drops, masked MSE.

        cue False (the dit stage, which trains the frame encoder the judge reads): the judge's cue is withheld
        from every item, plus the auxiliary sync loss; True (the cue stage): the cue is withheld from a
        `p_drop_cue` share of items, and no auxiliary loss (the frame encoder is frozen)."""
        m, cfg, tr = self.model, self.cfg, self.cfg.train
        B = batch.audio.shape[0]
        z = batch.latents(m)  # (B, T, C)
        T = z.shape[1]
        min_T = cfg.latent_frames(tr.min_window_s)
        lens = [T if self.rng.random() < 0.5 else self.rng.randint(min_T, T) for _ in range(B)]
        starts = [self.rng.randint(0, T - L) for L in lens]
        offs = [0.0 if self.rng.random() < 0.5 else 4.0 * self.rng.randint(1, 150) for _ in range(B)]
        Lmax = max(lens)
        x1 = torch.zeros(B, Lmax, z.shape[-1])
        onset = torch.zeros(B, Lmax)
        strength = batch.onset_strength(m) if tr.sync_aux_weight > 0 and not cue else None  # (B, T)
        for b in range(B):
            x1[b, :lens[b]] = z[b, starts[b]:starts[b] + lens[b]]
            if strength is not None:
                onset[b, :lens[b]] = strength[b, starts[b]:starts[b] + lens[b]]
        rate = cfg.latent_rate_hz
        caps = ["" if self.rng.random() < tr.p_drop_text else c for c in batch.captions]
        cond = m.prepare_conditions(batch.frames, caps, [o + s / rate for o, s in zip(offs, starts)],
                                    [L / rate for L in lens], frames_start_s=offs, num_latent_frames=Lmax,
                                    shot_starts=batch.shot_starts, cue=cue)
        aux = None
        if strength is not None:  # before the path drops: the head always sees the real sync features
            aux = masked_mse(self.sync_aux(cond.sync), torch.cat([x1, onset[..., None]], -1), cond.latent_mask)
        u = torch.rand(B)
        p1, p2, p3 = tr.p_drop_visual, tr.p_drop_visual + tr.p_drop_sync, tr.p_drop_visual + tr.p_drop_sync + tr.p_drop_both
        drop_v = (u < p1) | ((u >= p2) & (u < p3))
        drop_s = ((u >= p1) & (u < p2)) | ((u >= p2) & (u < p3))
        drop_c = torch.rand(B) < tr.p_drop_cue if cue else None  # without the cue there is none to drop
        cond = m.drop(cond, drop_v, drop_s, drop_c)
        x0 = torch.randn_like(x1)
        t = sample_t_logit_normal(B)
        v = m.velocity(interpolate(x0, x1, t), t, cond)  # (B, Lmax, C)
        flow = masked_mse(v, x1 - x0, cond.latent_mask)
        self.last_parts = {"flow": float(flow.detach())}
        if aux is None:
            return flow
        self.last_parts["sync_aux"] = float(aux.detach())
        return flow + tr.sync_aux_weight * aux

    def stage_dit(self, pool: ClipPool) -> None:
        m, B = self.model, self.cfg.train.batch
        m.vae.eval()
        live = self.dit_params()
        ema = self.state.get("ema") or {k: p.detach().clone() for k, p in live.items()}
        ema_params = {"live": live, "ema": ema}

        def step_fn(step):
            loss = self.dit_step_loss(Batch(pool.sample(B, min_items=4 * B), self.rng))
            return loss, dict(self.last_parts)

        self.run_stage("dit", list(live.values()) + list(self.sync_aux.parameters()), step_fn, lr=self.cfg.train.lr, ema_params=ema_params)

    def stage_cue(self, pool: ClipPool) -> None:
        """The DiT learns the picture judge's onset cue (`FoleyModel.cue_in`): the judge reads features of the
        frame encoder, so both stay frozen at the weights that ship, and the rest of the DiT side trains on
        (starting from the DiT's EMA weights, continuing its EMA) at half the DiT stage's learning rate."""
        m, B = self.model, self.cfg.train.batch
        if m.cue_in is None:
            raise TrainingError(f"variant {self.cfg.name!r} has no judge cue")
        if not self.state["steps"].get("cue"):  # a resumed cue stage goes on from its live weights
            self._load_ema(m)
        m.vae.eval()
        live = {k: p for k, p in self.dit_params().items() if not k.startswith("frame_encoder.")}
        ema = dict(self.state.get("ema") or {})
        ema.update({k: p.detach().clone() for k, p in live.items() if k not in ema})
        m.frame_encoder.requires_grad_(False)

        def step_fn(step):
            loss = self.dit_step_loss(Batch(pool.sample(B, min_items=4 * B), self.rng), cue=True)
            return loss, dict(self.last_parts)

        try:
            self.run_stage("cue", list(live.values()), step_fn, lr=self.cfg.train.lr / 2,
                           ema_params={"live": live, "ema": ema})
        finally:
            m.frame_encoder.requires_grad_(True)

    def stage_judge(self, pool: ClipPool) -> None:
        """The picture onset judge (`foley_model.judge`) on the frozen frame encoder: soft onset targets of
        the clips' impacts and beeps at mel frames shifted by a random fraction of a frame."""
        m, cfg = self.model, self.cfg
        if m.judge is None:
            raise TrainingError(f"variant {cfg.name!r} has no picture onset judge")
        self._load_ema(m)  # the judge learns the frame encoder that ships (the DiT's EMA), not its live weights
        from .judge import onset_targets
        rate, Tm = cfg.audio.mel_rate_hz, cfg.mel_frames(cfg.latent_frames(cfg.train.clip_s))
        m.eval()
        m.judge.train()

        def step_fn(step):
            items = pool.sample(JUDGE_BATCH)
            feats = torch.stack([self._judge_feats(it) for it in items]).float()  # (B, Tf, D)
            B = len(items)
            times = torch.rand(B, 1) / rate + torch.arange(Tm, dtype=torch.float32)[None] / rate  # (B, Tm)
            target = onset_targets([it["onsets"] for it in items], times, rate, cfg.judge.target_sigma_frames)
            return m.judge.loss(m.judge_features(feats, times), target), {}

        try:
            self.run_stage("judge", list(m.judge.parameters()), step_fn, lr=2e-3, warmup=30)
        finally:
            m.judge.eval()

    @torch.no_grad()
    def _judge_feats(self, item: dict) -> torch.Tensor:
        """The frozen frame encoder's features (Tf, D) of a pool item, cached on it."""
        if "judge_feats" not in item:
            if "onsets" not in item:
                raise TrainingError("pool items carry no ground-truth onsets (data worker too old)")
            from .encoders import frames_to_float
            x = frames_to_float(torch.from_numpy(np.ascontiguousarray(item["frames"]))[None], self.cfg.encoders.frame_size)
            cuts = [item["cuts"]] if item.get("cuts") is not None else None
            item["judge_feats"] = self.model.encode_frames(x, cuts)[0].half()
        return item["judge_feats"]

    def stage_stereo(self, pool: ClipPool) -> None:
        m, B = self.model, self.cfg.train.batch
        m.vae.eval()
        from .encoders import frames_to_float, position_cues, resample_by_time

        def step_fn(step):
            batch = Batch(pool.sample(B), self.rng)
            with torch.no_grad():
                mono, left, right, mono_lin = _mel_targets(m, batch.audio)
                T = mono.shape[-1] // 2 * 2
                mono, left, right, mono_lin = (x[..., :T] for x in (mono, left, right, mono_lin))
                if self.rng.random() < 0.5:  # the codec's mono mel, as at inference
                    mono = m.vae.decode(m.vae.encode(mono)[0])
                x = frames_to_float(batch.frames, self.cfg.encoders.frame_size)
                times = torch.arange(T, dtype=torch.float32)[None].expand(B, T) / self.cfg.audio.mel_rate_hz
                cues = resample_by_time(position_cues(x, self.cfg.stereo.cue_columns), torch.zeros(B),
                                        self.cfg.encoders.sync_fps, times).transpose(1, 2)  # (B, 2 cols, T)
            return m.stereo.loss(mono, cues, left, right, mono_lin), {}

        m.stereo.train()
        self.run_stage("stereo", list(m.stereo.parameters()), step_fn, lr=1e-3, warmup=30)

    def stage_vocoder(self, pool: ClipPool) -> None:
        m, B, hop = self.model, self.cfg.train.batch, self.cfg.audio.hop
        crop = 64  # mel frames (~1 s)

        def stft_loss(y, x):
            loss = 0.0
            for n_fft in (512, 1024, 2048):
                w = torch.hann_window(n_fft)
                sy = torch.stft(y, n_fft, n_fft // 4, window=w, return_complex=True).abs()
                sx = torch.stft(x, n_fft, n_fft // 4, window=w, return_complex=True).abs()
                loss = loss + (torch.log(sy + 1e-5) - torch.log(sx + 1e-5)).abs().mean() + (sy - sx).abs().mean()
            return loss

        def step_fn(step):
            batch = Batch(pool.sample(B), self.rng)
            wave = batch.audio[:, 0]  # (B, n)
            with torch.no_grad():
                mel = m.mel(wave)  # (B, M, T)
            a = self.rng.randint(0, mel.shape[-1] - crop)
            y = m.neural_vocoder(mel[..., a:a + crop])  # (B, crop * hop)
            target = wave[:, a * hop:(a + crop) * hop]
            return stft_loss(y, target), {}

        m.neural_vocoder.train()
        self.run_stage("vocoder", list(m.neural_vocoder.parameters()), step_fn, lr=1e-3, warmup=30)

    # ------------------------------------------------------------------ main
    def run(self) -> Path:
        def on_signal(signum, frame):
            self.print(f"signal {signum}: saving state and stopping")
            self.stop_requested = True

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        pool = ClipPool(self.seed, self.state.get("clips_seen", 0), self.cfg.train.clip_s,
                        self.cfg.encoders.frame_size, self.cfg.audio.sample_rate_hz)
        try:
            for stage in STAGES:
                if stage in self.stages and not self.stop_requested:
                    getattr(self, f"stage_{stage}")(pool)
                    self.state["clips_seen"] = pool.next_index
            ckpt = self.export()
        finally:
            pool.close()
            for s, h in old.items():
                signal.signal(s, h)
            self.loss_log.close()
        return ckpt

    def export(self) -> Path:
        """Write out_dir/checkpoint with the EMA DiT weights and the card."""
        self._load_ema(self.model)
        from .toyworld import GENERATOR_VERSION
        earlier = self.state.get("earlier_commands")  # the history of the checkpoint this run started from
        card = {
            "training_command": f"{earlier} && {self.command}" if earlier else self.command,
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "minutes_per_stage": {s: round(self.state["elapsed_s"].get(s, 0.0) / 60, 2) for s in STAGES},
            "steps_per_stage": dict(self.state["steps"]),
            "stages_done": sorted(self.state["stage_done"]),
            "clips_generated": self.state.get("clips_seen", 0),
            "vocoder_default": self.cfg.vocoder.default,
            "metrics": {},
        }
        path = save_checkpoint(self.model, self.out / "checkpoint", card)
        self.print(f"checkpoint written to {path}")
        return path


def train(variant: str = "tiny", minutes: float = 35.0, out_dir: str | os.PathLike = "runs/tiny", seed: int = 0,
          resume: bool = True, stages: tuple[str, ...] = DEFAULT_STAGES, threads: int = 2, save_every: int = 100,
          print_fn: Callable[[str], None] | None = None, command: str | None = None,
          init_from: str | os.PathLike | None = None) -> Path:
    """Train `variant` for `minutes` of wall clock split over `stages`; returns the checkpoint directory.

    init_from: a checkpoint to start from when `out_dir` holds no state.pt yet (e.g. to add a stage to the
    shipped model: `--stage judge --init-from foley_model/checkpoints/tiny`)."""
    cfg = get_config(variant)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stages {bad}; known: {STAGES}")
    pf = print_fn or (lambda s: print(s, flush=True))
    trainer = Trainer(cfg, Path(out_dir), seed, minutes, tuple(stages), resume, threads, save_every, pf,
                      command or " ".join(sys.argv), Path(init_from) if init_from is not None else None)
    return trainer.run()
