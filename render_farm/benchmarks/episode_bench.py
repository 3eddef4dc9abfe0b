"""`foley bench episode`: a synthetic toy-world episode through the whole `foley render` pipeline
(the farm's own steps, in-process: ingest, render batches, assemble), end to end on this machine.

Reports the wall time with the per-stage times the render report records (ingest, render — split
into proxy frames, condition encoders and the DiT sampler — decode, post, mux), the model load
separately, and the GPU busy fraction: nvidia-smi's utilisation (the share of time a kernel was
running) sampled through the render. On a CPU there is no GPU fraction ("n/a").
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeBench:
    minutes: float = 45.0
    model: str = "tiny"
    device: str = "auto"  # auto: cuda when there is one
    engine: str = "auto"
    dtype: str = "auto"
    batch_windows: int = 16
    size: tuple[int, int] = (256, 144)
    workers: int | None = None  # processes writing the synthetic episode (default: all cores)
    seed: int = 0
    work_dir: Path | None = None  # kept when given; a temporary directory otherwise


class GpuBusySampler:
    """GPU utilisation sampled by `nvidia-smi -lms` in the background (None where there is none)."""

    def __init__(self, gpu_index: str, interval_ms: int = 200) -> None:
        self.gpu_index, self.interval_ms = gpu_index, interval_ms
        self.samples: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "GpuBusySampler":
        exe = shutil.which("nvidia-smi")
        if exe is None:
            return self
        self._proc = subprocess.Popen(
            [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"-lms={self.interval_ms}",
             "-i", self.gpu_index], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass

    def stop(self) -> float | None:
        """Mean busy fraction over the samples, or None without nvidia-smi or samples."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            if self._thread is not None:
                self._thread.join(timeout=10)
        return round(sum(self.samples) / len(self.samples) / 100.0, 3) if self.samples else None


def _physical_gpu(device_index: int) -> str:
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[device_index] if device_index < len(visible) else str(device_index)


def run_episode_bench(bench: EpisodeBench, print_fn=None) -> dict:
    """Generate the episode, render it end to end, return the timings as plain data."""
    from render_farm.config import InferenceConfig, Settings
    from render_farm.local_render import plan_outputs, render_files
    from render_farm.spec import RenderSpec
    from render_farm.toyvideo import write_toy_episode

    say = print_fn or (lambda s: None)
    work = Path(bench.work_dir) if bench.work_dir else Path(tempfile.mkdtemp(prefix="foley-episode-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        video = work / "episode.mp4"
        t0 = time.perf_counter()
        # written before torch touches CUDA (the writers are spawned processes anyway)
        write_toy_episode(video, bench.minutes * 60.0, seed=bench.seed, size=bench.size, workers=bench.workers)
        gen_s = time.perf_counter() - t0
        say(f"episode: {bench.minutes:g} min toy-world video written in {gen_s:.1f} s")

        import torch

        from render_farm.engine import resolve_inference
        from render_farm.models import load_model

        device = bench.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        placement = resolve_inference(InferenceConfig(device=device, engine=bench.engine, dtype=bench.dtype))
        t0 = time.perf_counter()
        runtime = load_model(bench.model).runtime(placement)
        load_s = time.perf_counter() - t0
        say(f"model {bench.model} loaded and placed in {load_s:.1f} s: {runtime.describe()}")

        sampler = None
        if placement.on_cuda:
            sampler = GpuBusySampler(_physical_gpu(torch.device(placement.device).index or 0)).start()
            torch.cuda.reset_peak_memory_stats()
        out = work / "episode.foley.mp4"
        spec = RenderSpec(model=bench.model, batch_windows=bench.batch_windows)
        t0 = time.perf_counter()
        report = render_files(Settings(data_dir=work / "state"), plan_outputs([video], out, None, True), spec,
                              quiet=True, inference=placement)[0]
        wall = time.perf_counter() - t0
        busy = sampler.stop() if sampler is not None else None
        gpu_peak = round(torch.cuda.max_memory_allocated() / 2**20, 1) if placement.on_cuda else None
        video_s = bench.minutes * 60.0
        return {
            "minutes": bench.minutes, "video_s": video_s, "size": list(bench.size), "model": bench.model,
            "placement": runtime.describe(), "cpu_cores": os.cpu_count(), "generate_s": round(gen_s, 2),
            "model_load_s": round(load_s, 2), "wall_s": round(wall, 2), "realtime_factor": round(video_s / wall, 2),
            "windows": len(report["windows"]), "batches": len({w["batch"] for w in report["windows"]}),
            "batch_windows": bench.batch_windows,
            "stages": {k: v["wall_s"] for k, v in report["stages"].items()},
            "stage_parts": report.get("stage_parts", {}),
            "gpu_busy_fraction": busy, "gpu_busy_samples": len(sampler.samples) if sampler else 0,
            "gpu_peak_memory_mib": gpu_peak,
            "gpu_busy_by_stage_time": (round((report.get("stage_parts", {}).get("render", {}).get("encode", 0.0)
                                             + report.get("stage_parts", {}).get("render", {}).get("dit", 0.0))
                                            / wall, 3) if placement.on_cuda else None),
        }
    finally:
        if bench.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def format_episode_bench(r: dict) -> str:
    na = lambda v, f="{:.0%}": "n/a" if v is None else f.format(v)  # noqa: E731
    lines = [
        f"episode {r['minutes']:g} min ({r['size'][0]}x{r['size'][1]}), model {r['model']} on {r['placement']}, "
        f"{r['cpu_cores']} CPU cores; {r['windows']} windows in {r['batches']} batches of up to {r['batch_windows']}",
        f"end to end: {r['wall_s']:.1f} s wall ({r['realtime_factor']:.2f}x realtime); model load "
        f"{r['model_load_s']:.1f} s before it; episode generation {r['generate_s']:.1f} s (not counted)",
        f"GPU busy fraction: {na(r['gpu_busy_fraction'])} (nvidia-smi), "
        f"{na(r['gpu_busy_by_stage_time'])} by encoder + DiT stage time"
        + (f"; peak GPU memory {r['gpu_peak_memory_mib']:.0f} MiB" if r["gpu_peak_memory_mib"] is not None else ""),
        f"{'stage':<16}{'wall s':>9}{'share':>8}",
    ]
    for name, seconds in sorted(r["stages"].items(), key=lambda kv: -kv[1]):
        lines.append(f"{name:<16}{seconds:>9.2f}{seconds / r['wall_s']:>8.0%}")
        for part, s in sorted(r["stage_parts"].get(name, {}).items(), key=lambda kv: -kv[1]):
            label = f"  {name}.{part}"
            lines.append(f"{label:<16}{s:>9.2f}{s / r['wall_s']:>8.0%}")
    return "\n".join(lines)
