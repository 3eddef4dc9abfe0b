"""The model as the render steps see it: load once per process, render a batch of windows to
latents, and the chunkable decode stages (Mel-VAE → Mono2Stereo → vocoder) for assembly.

Window results are stored as one array per window: the standardised latents (T, C) followed by
the stereo position cues of its 2T mel frames folded to the latent rate (T, 4·cols), so the same
crossfade stitches both and assembly needs no second pass over the video.

Rendering runs on the process's inference placement (`InferenceConfig`): the CPU path is the
loaded model itself, in plain torch; a GPU worker gets a copy of the model on its device once per
process, with the velocity network wrapped by an engine (DeepSpeed with a CUDA graph per batch
shape, torch.compile, or eager). The decode stages of assembly always run on the CPU copy, so the
bytes of an assembled track do not depend on which worker assembled it.
"""
from __future__ import annotations

import copy
import functools
import logging
import math
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from render_farm.config import CPU_INFERENCE, InferenceConfig
from render_farm.errors import InvalidInput, NotFound
from render_farm.spec import RenderSpec
from render_farm.timeline.chunked import Stage

log = logging.getLogger(__name__)

CHUNK_LATENT_FRAMES = 1024  # assembly chunk (~33 s for tiny); any value gives the same bytes


@dataclass(frozen=True)
class WindowInput:
    frames: np.ndarray  # (Tf, H, W, 3) uint8 at 24 fps
    frames_t0_s: float  # time of frames[0]
    start_s: float  # window start (absolute)
    num_latent_frames: int
    start_frame: int
    frames_real: int | None = None  # leading frames that show real pictures (the rest: past the video's end)
    frames_before: np.ndarray | None = None  # (Tf, H, W, 3) the picture 1/24 s before each frame (a proxy at the
    # source's rate, `steps.render.window_pictures`); None: the previous frame


@dataclass
class Runtime:
    """The render part of a model placed on one device: conditions and sampler run on `model`; the
    velocity network runs in `engine` (None: the model's own network, eager: the CPU path)."""

    model: Any  # FoleyModel on `device`
    engine: Any  # render_farm.engine.EagerEngine or a subclass, or None
    device: torch.device
    placement: InferenceConfig

    @property
    def bind(self):
        return None if self.engine is None else self.engine.bind

    def describe(self) -> str:
        engine = "eager fp32" if self.engine is None else self.engine.describe()
        return f"{self.placement.label or self.device} {engine}"

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class ModelHandle:
    """A loaded checkpoint and everything the pipeline asks of it."""

    def __init__(self, name: str, sha256: str, model, path: Path | None = None) -> None:
        self.name, self.sha256, self.model, self.path = name, sha256, model, path
        cfg = model.cfg
        self.cfg = cfg
        self.sample_rate_hz: int = cfg.audio.sample_rate_hz
        self.latent_rate_hz = Fraction(cfg.audio.sample_rate_hz, cfg.audio.hop * cfg.vae.time_compression)
        self.latent_channels: int = cfg.vae.latent_channels
        self.cue_columns: int = cfg.stereo.cue_columns
        self.frame_size: tuple[int, int] = (96, 54)  # proxy frames → model input (it area-resizes further)
        # frames a window needs beyond each side (the frame encoder's context, and the judge's when it cues the DiT)
        self.frame_context: int = int(model.frame_context)
        self.samples_per_latent: int = cfg.samples_per_latent
        model.eval()
        self._runtimes: dict[InferenceConfig, Runtime] = {}
        self._lock = threading.Lock()

    def runtime(self, placement: InferenceConfig | None = None) -> Runtime:
        """The model placed for rendering, built once per placement and process (see module doc).

        `placement` must be resolved (`render_farm.engine.resolve_inference`): a CUDA device that
        exists, or the CPU path."""
        placement = placement or CPU_INFERENCE
        with self._lock:
            rt = self._runtimes.get(placement)
            if rt is None:
                rt = self._runtimes[placement] = self._place(placement)
            return rt

    def _place(self, placement: InferenceConfig) -> Runtime:
        if not placement.on_cuda:
            return Runtime(self.model, None, torch.device("cpu"), placement)
        from render_farm.engine import DTYPES, select_engine

        t0 = time.perf_counter()
        device = torch.device(placement.device)
        model = copy.deepcopy(self.model).to(device).eval()  # this process's copy; the CPU one stays for decoding
        engine = select_engine(placement.engine, model.dit, device, DTYPES[placement.dtype],
                               cuda_graphs=placement.cuda_graphs)
        log.info("model %s placed on %s (%s) in %.1f s", self.name, placement.label or device, engine.describe(),
                 time.perf_counter() - t0)
        return Runtime(model, engine, device, placement)

    def visual_tokens(self, num_latent_frames: int) -> int:
        """Semantic tokens (8 fps) covering `num_latent_frames` latent frames: the batch shape of a bucket."""
        fps = Fraction(self.cfg.encoders.semantic_fps).limit_denominator(1000)
        return max(1, math.ceil(Fraction(num_latent_frames) / self.latent_rate_hz * fps))

    # ------------------------------------------------------------------ planning
    def resolve(self, spec: RenderSpec) -> RenderSpec:
        """Fill the spec's open parameters with this model's defaults (trained window length)."""
        trained = float(self.cfg.window_s)
        return spec.resolved(steps=self.cfg.sampling.steps, cfg_scale=self.cfg.sampling.cfg_scale,
                             candidates=self.cfg.sampling.candidates,
                             window_s=(max(0.5, round(trained * 0.75, 3)), trained), overlap_s=round(trained / 4, 3))

    # ------------------------------------------------------------------ render
    @property
    def result_channels(self) -> int:
        return self.latent_channels + 4 * self.cue_columns

    @torch.inference_mode()
    def render_latents(self, inputs: Sequence[WindowInput], noises: Sequence[np.ndarray], spec: RenderSpec, *,
                       padded_frames: int | None = None, placement: InferenceConfig | None = None,
                       timings: dict[str, float] | None = None) -> list[np.ndarray]:
        """One padded batch → per window (T, C + 4·cols) float32: latents then folded stereo cues.

        noises: per window (T, C), or (N, T, C) for N candidates (the same N for every window) of which the
        picture onset judge keeps one (`FoleyModel.sample_candidates`).

        padded_frames: the batch's length bucket from the plan (every window padded to it, and the
        semantic tokens to its length, so the batch has the bucket's shape); None (plans made before
        buckets): the longest window's length. placement: where the network runs (default: the CPU
        path). timings: filled with the seconds spent in "encode" (conditions) and "dit" (sampler).
        """
        longest = max(w.num_latent_frames for w in inputs)
        T = padded_frames or longest
        assert T >= longest, f"{padded_frames=} < {longest=}"
        rt = self.runtime(placement)
        t0 = time.perf_counter()
        Tf = max(w.frames.shape[0] for w in inputs)

        def held(w: WindowInput, pictures: np.ndarray) -> np.ndarray:  # padded to Tf frames holding the last picture
            return np.concatenate([pictures, np.repeat(w.frames[-1:], Tf - len(w.frames), 0)])

        frames = np.stack([held(w, w.frames) for w in inputs])
        with_before = [w.frames_before is not None for w in inputs]
        assert all(with_before) or not any(with_before), "a batch's windows come from one proxy: all or no references"
        # padding frames hold the last picture: measured against itself, no motion
        before = torch.from_numpy(np.stack([held(w, w.frames_before) for w in inputs])) if all(with_before) else None
        # spec "clamp": a window whose frames run past the video's end is encoded from its real frames only
        # (`FoleyModel.encode_frames`); "hold" (jobs stored before) reads the held picture as it did
        real = [w.frames_real if w.frames_real is not None and w.frames_real < len(w.frames) else Tf for w in inputs]
        valid = real if spec.past_end == "clamp" and min(real) < Tf else None
        rate = float(self.latent_rate_hz)
        cond = rt.model.prepare_conditions(
            torch.from_numpy(frames), [spec.prompt] * len(inputs),
            start_s=[w.start_s for w in inputs],
            duration_s=[w.num_latent_frames / rate for w in inputs],
            frames_start_s=[w.frames_t0_s for w in inputs],
            num_latent_frames=T, num_visual_tokens=self.visual_tokens(T) if padded_frames else None,
            frames_valid=valid, frames_before=before)
        stacks = [n if n.ndim == 3 else n[None] for n in noises]  # (N, T_i, C) each
        n_cand = stacks[0].shape[0]
        assert all(n.shape[0] == n_cand for n in stacks), "every window needs the same number of candidates"
        noise = torch.zeros(n_cand, len(inputs), T, self.latent_channels)
        for i, n in enumerate(stacks):
            noise[:, i, : n.shape[1]] = torch.from_numpy(n)
        negative = [spec.negative_prompt] * len(inputs) if spec.negative_prompt else None
        if timings is not None:
            rt.synchronize()
            timings["encode"] = timings.get("encode", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
        lat = rt.model.sample_candidates(cond, noise.to(rt.device), steps=spec.steps, cfg_scale=spec.cfg_scale,
                                         negative_prompt=negative, bind=rt.bind,
                                         choose_per=spec.choose_per)[0].cpu()
        if timings is not None:
            timings["dit"] = timings.get("dit", 0.0) + time.perf_counter() - t0
        cues = cond.cues.cpu()  # (B, 2 cols, 2T)
        out = []
        for i, w in enumerate(inputs):
            n = w.num_latent_frames
            folded = cues[i, :, : 2 * n].T.reshape(n, 4 * self.cue_columns)  # (T, 2 mel frames × 2 cols)
            out.append(torch.cat([lat[i, :n], folded], dim=1).float().numpy())
        return out

    # ------------------------------------------------------------------ assemble
    def decode_stages(self) -> list[Stage]:
        """Chunkable stages: (T, C + 4 cols) → (2T, M + 2 cols) → (2T, 2M) → (2T·hop, 2) samples."""
        m, C, cols = self.model, self.latent_channels, self.cue_columns
        n_mels, hop = self.cfg.audio.n_mels, self.cfg.audio.hop

        @torch.inference_mode()
        def vae(x: np.ndarray, start: int) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x))
            mel = m.decode_mel(t[None, :, :C])[0]  # (M, 2T)
            cues = t[:, C:].reshape(-1, 2 * cols)  # (2T, 2 cols)
            return torch.cat([mel.T, cues], dim=1).numpy()

        @torch.inference_mode()
        def stereo(x: np.ndarray, start: int) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x)).T[None]  # (1, M + 2 cols, Tm)
            st = m.to_stereo(t[:, :n_mels], t[:, n_mels:])[0]  # (2, M, Tm)
            return st.reshape(2 * n_mels, -1).T.numpy()  # (Tm, 2M)

        @torch.inference_mode()
        def vocode(x: np.ndarray, start: int) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x)).T.reshape(2, n_mels, -1)[None]  # (1, 2, M, Tm)
            wave = m.vocode(t, frame_offset=start)[0]  # (2, Tm·hop)
            return wave.T.numpy()

        voc = m.vocoder()
        return [
            Stage(vae, context=m.vae.receptive_field, factor=self.cfg.vae.time_compression, name="mel-vae"),
            Stage(stereo, context=m.stereo.receptive_field, factor=1, name="mono2stereo"),
            Stage(vocode, context=voc.receptive_field, factor=hop, name="vocoder"),
        ]


def shipped_checkpoints() -> dict[str, Path]:
    """Checkpoints that ship inside the package, by name."""
    from foley_model.checkpoint import default_checkpoint_path

    path = Path(default_checkpoint_path())
    return {"tiny": path}


def resolve_model_path(name_or_path: str) -> tuple[str, Path]:
    shipped = shipped_checkpoints()
    if name_or_path in shipped:
        return name_or_path, shipped[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path.name, path
    raise NotFound(f"model {name_or_path!r}: not a shipped model ({', '.join(sorted(shipped))}) nor a checkpoint path")


@functools.lru_cache(maxsize=4)
def load_model(name_or_path: str) -> ModelHandle:
    """Load a checkpoint once per process (verified against its card's SHA-256)."""
    from foley_model.checkpoint import load_checkpoint
    from foley_model.errors import CheckpointError

    name, path = resolve_model_path(name_or_path)
    try:
        model, card = load_checkpoint(path)
    except CheckpointError as exc:
        raise InvalidInput(f"model {name_or_path}: {exc}") from None
    log.info("loaded model %s from %s (sha256 %s)", name, path, card["sha256"][:12])
    return ModelHandle(card.get("variant", name) if name == path.name else name, card["sha256"], model, path)


def model_for_spec(spec: RenderSpec) -> ModelHandle:
    return load_model(spec.model)
