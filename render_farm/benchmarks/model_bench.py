"""`foley bench model`: latent sampling speed (Euler steps, CFG as one batched pass) of one
engine at several batch sizes, against the plain one-window eager baseline of the same network,
measured side by side in one process on one device.

- audio-seconds per device-second: real window seconds (not padding) over sampling wall time;
- achieved TFLOP/s: FLOPs COUNTED with FlopCounterMode over one CFG step of one window (every op
  is per-sample, so a batch of B does B times that), times the steps, over the measured time;
- fraction of the matrix peak: the peak is MEASURED in the same run (a large matmul in the
  network's dtype on the same device, before and after the runs; the better one counts);
- batched equals one-window: windows 0 and B-1 of each batch against the same windows rendered
  alone by the same engine, as relative RMS error within the dtype's tolerance; the engine at
  batch 1 against the eager baseline likewise.

Windows are padded to the length bucket a render plan would give them, so the shapes are the
farm's. Weights are random (layers initialised to zero get small random values, so outputs carry
signal).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import torch

from render_farm.engine import DTYPE_NAMES, DTYPES, EagerEngine, select_engine
from render_farm.timeline.buckets import bucket_for, length_buckets

log = logging.getLogger(__name__)

# relative RMS error allowed between a window rendered in a batch and alone (same engine and dtype)
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 1e-2}


@dataclass(frozen=True)
class ModelBench:
    variant: str = "tiny"
    batches: tuple[int, ...] = (1, 4, 16)
    steps: int | None = None  # default: the config's (kling on a CPU: 1)
    duration_s: float | None = None  # default: the trained window (kling on a CPU: 1 s)
    engine: str = "eager"
    device: str = "auto"  # auto: cuda when there is one
    dtype: str = "auto"  # auto: bf16 on cuda, fp32 on the CPU
    check: bool = True
    repeats: int = 1


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        log.warning("%s: no usable CUDA device here: benchmarking on the CPU", requested)
        return torch.device("cpu")
    return device


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPES[requested]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - t0, out


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, min_s: float = 0.5) -> dict:
    """Best TFLOP/s of an n x n x n matmul in `dtype` on `device` (n = 8192 on CUDA, 1024 on a CPU)."""
    n = 8192 if device.type == "cuda" else 1024
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    for _ in range(2):
        a @ b
    best, total, iters = 0.0, 0.0, 0
    while total < min_s or iters < 5:
        dt, _ = timed(device, lambda: a @ b)
        best, total, iters = max(best, 2 * n**3 / dt / 1e12), total + dt, iters + 1
    return {"tflops": round(best, 3), "n": n, "dtype": DTYPE_NAMES[dtype], "iterations": iters}


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of fn() counted by FlopCounterMode (attention too: the CPU kernel gets the same
    formula as the CUDA ones, which FlopCounterMode knows)."""
    from torch.utils.flop_counter import FlopCounterMode

    extra = {}
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:
        extra[cpu_sdpa] = _sdpa_flops
    with FlopCounterMode(display=False, custom_mapping=extra) as counter:
        fn()
    return int(counter.get_total_flops())


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def randomize_zero_layers_(model: torch.nn.Module, std: float = 0.02) -> None:
    """Zero-initialised layers (adaLN, final projections) get small random weights (seeded)."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, std)


class BenchWindows:
    """Distinct windows (frames or features, prompts, noise) for a variant; window i is the same in
    every batch, so a batch's window i can be compared with window i rendered alone."""

    def __init__(self, model, duration_s: float, padded_frames: int) -> None:
        self.model, self.duration_s, self.padded = model, duration_s, padded_frames
        self.frames = model.cfg.latent_frames(duration_s)

    def _one(self, i: int) -> dict:
        cfg, enc = self.model.cfg, self.model.cfg.encoders
        g = torch.Generator().manual_seed(1000 + i)
        nf = int(self.duration_s * enc.sync_fps) + 12
        item = {"noise": torch.zeros(self.padded, cfg.vae.latent_channels)}
        item["noise"][: self.frames] = torch.randn(self.frames, cfg.vae.latent_channels, generator=g)
        if enc.kind == "tiny":
            item["frames"] = torch.randint(0, 256, (nf, 64, 64, 3), dtype=torch.uint8, generator=g)
        else:
            item["sync"] = torch.randn(nf, enc.sync_dim, generator=g)
            item["semantic"] = torch.randn(int(self.duration_s * enc.semantic_fps) + 4, enc.semantic_dim, generator=g)
            item["text"] = torch.randn(8, enc.text_dim, generator=g)
        return item

    def batch(self, indices: list[int]):
        """-> conditions (prepared once) and noise (B, padded, C) of these windows."""
        items = [self._one(i) for i in indices]
        B, m = len(items), self.model
        lv = m.cfg.encoders.semantic_fps * self.padded / m.cfg.latent_rate_hz
        common = dict(start_s=[0.0] * B, duration_s=[self.duration_s] * B, num_latent_frames=self.padded,
                      num_visual_tokens=max(1, int(-(-lv // 1))))
        stack = lambda k: torch.stack([it[k] for it in items])  # noqa: E731
        if m.cfg.encoders.kind == "tiny":
            cond = m.prepare_conditions(stack("frames"), ["a ball bouncing on a wooden floor"] * B, **common)
        else:
            cond = m.prepare_conditions(None, [""] * B, sync_feats=stack("sync"), semantic_feats=stack("semantic"),
                                        text_feats=stack("text"), **common)
        return cond, stack("noise").to(m.device)


def run_model_bench(bench: ModelBench) -> dict:
    """Measure (see module doc) and return the results as plain data."""
    from foley_model.configs import get_config
    from foley_model.flow_matching import FlowMatching
    from foley_model.model import FoleyModel, cat_conditions

    device = pick_device(bench.device)
    dtype = pick_dtype(bench.dtype, device)
    mcfg = get_config(bench.variant)
    cpu_big = mcfg.name != "tiny" and device.type == "cpu"
    steps = bench.steps or (1 if cpu_big else mcfg.sampling.steps)
    duration_s = bench.duration_s or (1.0 if cpu_big else mcfg.window_s)
    scale = mcfg.sampling.cfg_scale
    buckets = length_buckets(mcfg.latent_frames(0.75 * mcfg.window_s), mcfg.latent_frames(mcfg.window_s))
    real = mcfg.latent_frames(duration_s)
    padded = bucket_for(real, buckets)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = FoleyModel(mcfg)
    model = model.to(device).eval()
    randomize_zero_layers_(model)
    synchronize(device)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    n_dit = sum(p.numel() for p in model.dit.parameters())

    baseline = EagerEngine(model.dit, device, dtype)  # the network in its dtype, called plainly
    engine = baseline if bench.engine == "eager" else select_engine(bench.engine, model.dit, device, dtype)
    windows = BenchWindows(model, duration_s, padded)
    peak = measure_matmul_peak(device, dtype)

    def sample(eng, cond, noise, n_steps):
        with torch.inference_mode():
            return model.sample_latents(cond, noise, steps=n_steps, cfg_scale=scale, bind=eng.bind)

    with torch.inference_mode():
        cond1, noise1 = windows.batch([0])
        pair = model.bind_velocity(cat_conditions(cond1, model.unconditional(cond1)) if scale != 1.0 else cond1,
                                   baseline.bind)
        t_half = torch.full((1,), 0.5, device=device)
        step = (lambda: FlowMatching.cfg_velocity_batched(pair, noise1, t_half, scale)) if scale != 1.0 \
            else (lambda: pair(noise1, t_half))
        flops_step = count_flops(step)
        flops_decode = count_flops(lambda: model.decode_mel(noise1[:, :real]))
    flops_window = flops_step * steps

    def measure(eng, cond, noise):
        sample(eng, cond, noise, 1)  # warm-up: CUDA graph capture / compilation of this shape
        runs = [timed(device, lambda: sample(eng, cond, noise, steps)) for _ in range(max(1, bench.repeats))]
        return min(r[0] for r in runs), runs[0][1]

    base_s, base_out = measure(baseline, cond1, noise1)
    base_rate = duration_s / base_s
    singles: dict[int, torch.Tensor] = {}

    def single(i: int) -> torch.Tensor:
        if i not in singles:
            cond, noise = windows.batch([i])
            singles[i] = sample(engine, cond, noise, steps)[0]
        return singles[i]

    tol = TOLERANCE[dtype]
    rows = []
    for B in bench.batches:
        cond, noise = windows.batch(list(range(B)))
        seconds, out = measure(engine, cond, noise)
        if B == 1:
            singles.setdefault(0, out[0])
        row = {"batch": B, "seconds": round(seconds, 4), "audio_s_per_s": round(B * duration_s / seconds, 3),
               "x_baseline": round(B * duration_s / seconds / base_rate, 2),
               "tflops": B * flops_window / seconds / 1e12}
        if bench.check and B > 1:
            err = max(rel_rms(out[i], single(i)) for i in sorted({0, B - 1}))
            row.update(batched_vs_single_rel_rms=float(f"{err:.3g}"), check_ok=err <= tol)
        rows.append(row)
    engine_vs_eager = rel_rms(single(0), base_out[0]) if bench.check else None
    # the model's default sampling: N candidates in one batch, the picture onset judge keeps one per window
    # (their Griffin-Lim mono audio and onsets included): what one window costs as `foley render` runs it
    n_cand = mcfg.sampling.candidates
    candidates = None
    if n_cand > 1 and model.judge is not None:
        noises = torch.stack([noise1] + [torch.randn_like(noise1) for _ in range(n_cand - 1)])

        def pick():
            with torch.inference_mode():
                return model.sample_candidates(cond1, noises, steps=steps, cfg_scale=scale, bind=engine.bind)

        pick()
        cand_s = min(timed(device, pick)[0] for _ in range(max(1, bench.repeats)))
        candidates = {"candidates": n_cand, "seconds": round(cand_s, 4), "audio_s_per_s": round(duration_s / cand_s, 3)}
    again = measure_matmul_peak(device, dtype)  # before and after: a shared machine's best moment counts
    peak = max(peak, again, key=lambda p: p["tflops"])
    for row in rows:
        row["tflops"], row["peak_fraction"] = round(row["tflops"], 4), round(row["tflops"] / peak["tflops"], 4)
    one = next((r for r in rows if r["batch"] == 1), None)
    return {
        "variant": mcfg.name, "device": str(device), "device_name": _device_name(device),
        "threads": torch.get_num_threads(), "engine_requested": bench.engine, "engine": engine.describe(),
        "dtype": DTYPE_NAMES[dtype], "parameters": n_params, "dit_parameters": n_dit, "build_s": round(build_s, 2),
        "steps": steps, "cfg_scale": scale, "window_s": duration_s, "latent_frames": real, "padded_frames": padded,
        "flops_per_window_step": flops_step, "gflops_per_audio_s_sampling": round(flops_window / duration_s / 1e9, 3),
        "gflops_per_audio_s_vae_decode": round(flops_decode / duration_s / 1e9, 4),
        "matmul_peak": peak,
        "baseline": {"engine": baseline.describe(), "batch": 1, "seconds": round(base_s, 4),
                     "audio_s_per_s": round(base_rate, 3),
                     "tflops": round(flops_window / base_s / 1e12, 4),
                     "peak_fraction": round(flops_window / base_s / 1e12 / peak["tflops"], 4)},
        "eager_one_window_audio_s_per_s": round(base_rate, 3),
        "engine_one_window_audio_s_per_s": one["audio_s_per_s"] if one else None,
        "engine_vs_eager_rel_rms": None if engine_vs_eager is None else float(f"{engine_vs_eager:.3g}"),
        "tolerance_rel_rms": tol,
        "rows": rows,
        "with_candidates": candidates,
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"{platform.processor() or platform.machine()} CPU"


def format_model_bench(r: dict) -> str:
    b, p = r["baseline"], r["matmul_peak"]
    lines = [
        f"variant {r['variant']}: {r['parameters'] / 1e6:.2f} M parameters (DiT {r['dit_parameters'] / 1e6:.2f} M), "
        f"device {r['device']} ({r['device_name']}, {r['threads']} threads), engine {r['engine']}"
        + ("" if r["engine"].startswith(r["engine_requested"]) else f" (asked for {r['engine_requested']})"),
        f"window {r['window_s']:g} s = {r['latent_frames']} latent frames padded to {r['padded_frames']}, "
        f"{r['steps']} steps, CFG {r['cfg_scale']:g} (cond+uncond in one batch)",
        f"FLOPs counted (one CFG step, FlopCounterMode): {r['flops_per_window_step'] / 1e9:.3f} GFLOP per window-step; "
        f"per audio-second: sampling {r['gflops_per_audio_s_sampling']:.3f} GFLOP, "
        f"VAE decode {r['gflops_per_audio_s_vae_decode']:.4f} GFLOP",
        f"matrix peak measured: {p['tflops']:.3f} TFLOP/s ({p['dtype']} {p['n']}^3 matmul)",
        f"baseline ({b['engine']}, one window per call): {b['seconds']:.3f} s, {b['audio_s_per_s']:.2f} audio-s per "
        f"device-s, {b['tflops']:.4f} TFLOP/s ({b['peak_fraction']:.1%} of peak)",
        f"{'batch':>5} {'seconds':>9} {'audio-s/dev-s':>14} {'x baseline':>11} {'TFLOP/s':>9} {'of peak':>8}"
        f" {'batched vs single':>18}",
    ]
    for row in r["rows"]:
        check = ""
        if "batched_vs_single_rel_rms" in row:
            check = f"{row['batched_vs_single_rel_rms']:.2g} {'ok' if row['check_ok'] else 'FAIL'}"
        lines.append(f"{row['batch']:>5} {row['seconds']:>9.3f} {row['audio_s_per_s']:>14.2f} "
                     f"{row['x_baseline']:>10.2f}x {row['tflops']:>9.4f} {row['peak_fraction']:>8.1%} {check:>18}")
    c = r.get("with_candidates")
    if c:
        lines.append(f"default sampling, {c['candidates']} candidates reranked by the picture onset judge, one window: "
                     f"{c['seconds']:.3f} s ({c['audio_s_per_s']:.2f} audio-s per device-s)")
    if r["engine_vs_eager_rel_rms"] is not None:
        lines.append(f"engine vs eager baseline, one window: rel RMS {r['engine_vs_eager_rel_rms']:.2g} "
                     f"(tolerance {r['tolerance_rel_rms']:g})")
    return "\n".join(lines)
