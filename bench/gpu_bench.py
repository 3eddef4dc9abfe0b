"""Every GPU measurement of issue 7 in one run, written as a markdown table (and the raw JSON).

    python3 bench/gpu_bench.py [--out DIR] [--budget-s 450] [--episode-minutes 45]

On a CUDA machine (goal: under 8 minutes on one H100 with 16 cores), in order of importance:
1. `foley bench model --variant kling --batch 1,4,16 --steps 25` with --engine eager, then
   deepspeed (each run measures the one-window eager baseline of the same network itself);
2. `foley bench episode`: a 2-minute probe, then the longest episode up to --episode-minutes that
   the time left allows (45 minutes is the issue's goal; the table says which length ran);
3. --engine compile (compiles each batch shape: minutes), and the tiny variant with DeepSpeed.
Each step is a fresh process with a timeout cut to the time left; the table is rewritten after
every step, so a run stopped early still leaves what it measured.

Without CUDA it proves itself quickly on the CPU: the tiny variant at small sizes (eager and
DeepSpeed when installed) and a 3-second episode.

Output: DIR/gpu_bench.md and DIR/gpu_bench.json (DIR: --out, else $OUT, else bench/out).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _last_json(text: str) -> dict | None:
    """The last JSON object printed on its own lines (DeepSpeed may print before it)."""
    decoder, found = json.JSONDecoder(), None
    for i, line in enumerate(text.splitlines(keepends=True)):
        if line.strip() == "{":
            start = sum(len(x) for x in text.splitlines(keepends=True)[:i])
            try:
                found, _ = decoder.raw_decode(text[start:])
            except json.JSONDecodeError:
                continue
    return found


class Run:
    def __init__(self, out_dir: Path, budget_s: float) -> None:
        self.out_dir, self.budget_s, self.t0 = out_dir, budget_s, time.monotonic()
        self.steps: list[dict] = []
        self.env: dict = {}

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def foley(self, name: str, args: list[str], cap_s: float, reserve_s: float = 0.0) -> dict | None:
        """Run `python -m render_farm ARGS --json` with a timeout; record and return its JSON."""
        timeout = min(cap_s, self.left() - reserve_s)
        step = {"name": name, "args": args, "timeout_s": round(timeout, 1)}
        self.steps.append(step)
        if timeout < 20:
            step["status"] = "skipped: out of time"
            self.write()
            return None
        t0 = time.monotonic()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            proc = subprocess.run([sys.executable, "-m", "render_farm", *args, "--json"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            tail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            step.update(status=f"timeout after {timeout:.0f} s", wall_s=round(time.monotonic() - t0, 1),
                        stderr_tail=tail[-1500:])
            print(f"[{time.monotonic() - self.t0:6.1f} s] {name}: {step['status']}", flush=True)
            self.write()
            return None
        step["wall_s"] = round(time.monotonic() - t0, 1)
        result = _last_json(proc.stdout) if proc.returncode == 0 else None
        if result is None:
            step.update(status=f"failed (exit {proc.returncode})", stderr_tail=proc.stderr[-3000:],
                        stdout_tail=proc.stdout[-1500:])
        else:
            step.update(status="ok", result=result)
        print(f"[{time.monotonic() - self.t0:6.1f} s] {name}: {step['status']} in {step['wall_s']} s", flush=True)
        self.write()
        return result

    # ------------------------------------------------------------------------------ output
    def write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        data = {"env": self.env, "elapsed_s": round(time.monotonic() - self.t0, 1), "steps": self.steps}
        (self.out_dir / "gpu_bench.json").write_text(json.dumps(data, indent=2) + "\n")
        (self.out_dir / "gpu_bench.md").write_text(self.markdown())

    def markdown(self) -> str:
        e = self.env
        out = [f"# Issue 7 measurements — {e.get('date')} — {e.get('device')}", "",
               f"{e.get('cores')} CPU cores; python {e.get('python')}, torch {e.get('torch')}, "
               f"deepspeed {e.get('deepspeed')}; whole run {time.monotonic() - self.t0:.0f} s "
               f"(budget {self.budget_s:.0f} s).", ""]
        models = [s for s in self.steps if s["name"].startswith("model")]
        if models:
            out += ["## `foley bench model` (random weights; audio-seconds per device-second of latent sampling)", "",
                    "| variant | engine | batch | audio-s/dev-s | × one-window eager | TFLOP/s (counted) | of measured "
                    "peak | batched vs single (rel RMS) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
            for s in models:
                r = s.get("result")
                if r is None:
                    out.append(f"| {s['name']} | | | {s.get('status')} | | | | |")
                    continue
                b = r["baseline"]
                out.append(f"| {r['variant']} | {b['engine']} (baseline) | 1 | {b['audio_s_per_s']:.3g} | 1.00 | "
                           f"{b['tflops']:.3g} | {b['peak_fraction']:.1%} | |")
                for row in r["rows"]:
                    check = ""
                    if "batched_vs_single_rel_rms" in row:
                        check = f"{row['batched_vs_single_rel_rms']:.2g} {'ok' if row['check_ok'] else 'FAIL'}"
                    out.append(f"| {r['variant']} | {r['engine']} | {row['batch']} | {row['audio_s_per_s']:.3g} | "
                               f"{row['x_baseline']:.2f} | {row['tflops']:.3g} | {row['peak_fraction']:.1%} | "
                               f"{check} |")
            out.append("")
            for s in models:
                r = s.get("result")
                if r:
                    out.append(f"- {s['name']}: {r['parameters'] / 1e6:.0f} M parameters, {r['window_s']:g} s windows "
                               f"({r['latent_frames']} latent frames padded to {r['padded_frames']}), {r['steps']} "
                               f"steps, CFG {r['cfg_scale']:g}, {r['dtype']}; "
                               f"{r['gflops_per_audio_s_sampling']:.4g} GFLOP per audio-second counted; matrix peak "
                               f"{r['matmul_peak']['tflops']:.4g} TFLOP/s measured ({r['matmul_peak']['dtype']}); "
                               f"engine vs eager rel RMS {r['engine_vs_eager_rel_rms']}; process {s['wall_s']} s")
            out.append("")
        episodes = [s for s in self.steps if s["name"].startswith("episode")]
        if episodes:
            out += ["## `foley bench episode` (synthetic toy-world episode, shipped tiny model, end to end)", "",
                    "| minutes | wall s | × realtime | GPU busy (nvidia-smi) | model load s | stages s |",
                    "| --- | --- | --- | --- | --- | --- |"]
            for s in episodes:
                r = s.get("result")
                if r is None:
                    out.append(f"| {s['name']} | {s.get('status')} | | | | |")
                    continue
                parts = r["stage_parts"].get("render", {})
                stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["stages"].items(), key=lambda kv: -kv[1]))
                stages += " (render: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()) + ")"
                busy = "n/a" if r["gpu_busy_fraction"] is None else f"{r['gpu_busy_fraction']:.0%}"
                out.append(f"| {r['minutes']:g} | {r['wall_s']:.1f} | {r['realtime_factor']:.2f} | {busy} | "
                           f"{r['model_load_s']:.1f} | {stages} |")
            out.append("")
        problems = [s for s in self.steps if s.get("status") != "ok"]
        if problems:
            out += ["## Not measured", ""]
            for s in problems:
                tail = (s.get("stderr_tail") or "").strip().splitlines()[-3:]
                out.append(f"- {s['name']}: {s.get('status')}" + (f" — `{' / '.join(tail)[:400]}`" if tail else ""))
            out.append("")
        return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="Wall budget for all steps (default: 450 s on CUDA, 1800 s on a CPU).")
    parser.add_argument("--episode-minutes", type=float, default=45.0)
    args = parser.parse_args()
    out_dir = args.out or Path(os.environ.get("OUT") or ROOT / "bench" / "out")

    import torch

    cuda = torch.cuda.is_available()  # this process only asks; the benchmarks run in their own processes
    run = Run(out_dir, args.budget_s or (450.0 if cuda else 1800.0))
    run.env = {"date": dt.date.today().isoformat(), "python": platform.python_version(), "torch": torch.__version__,
               "deepspeed": _version("deepspeed"), "cores": os.cpu_count(),
               "device": torch.cuda.get_device_name(0) if cuda else f"no GPU ({platform.machine()} CPU)"}
    run.write()
    deepspeed = run.env["deepspeed"] != "not installed"
    if cuda:
        kling = ["bench", "model", "--variant", "kling", "--batch", "1,4,16", "--steps", "25"]
        run.foley("model kling eager", [*kling, "--engine", "eager"], cap_s=120, reserve_s=200)
        run.foley("model kling deepspeed", [*kling, "--engine", "deepspeed"], cap_s=150, reserve_s=150)
        probe = run.foley("episode 2 min", ["bench", "episode", "--minutes", "2"], cap_s=120, reserve_s=120)
        if probe:
            per_min = (probe["wall_s"] + probe["generate_s"] + probe["model_load_s"]) / 2 + 1.0
            minutes = min(args.episode_minutes, int((run.left() - 150) / (per_min * 1.3)))
            if minutes >= 4:
                run.foley(f"episode {minutes} min", ["bench", "episode", "--minutes", str(minutes)],
                          cap_s=600, reserve_s=100)
        run.foley("model kling compile", [*kling, "--engine", "compile"], cap_s=300, reserve_s=25)
        run.foley("model tiny deepspeed", ["bench", "model", "--variant", "tiny", "--batch", "1,4,16",
                                           "--engine", "deepspeed"], cap_s=90)
    else:
        small = ["bench", "model", "--variant", "tiny", "--batch", "1,2", "--steps", "2", "--duration", "1"]
        run.foley("model tiny eager (CPU)", [*small, "--engine", "eager"], cap_s=600)
        if deepspeed:
            run.foley("model tiny deepspeed (CPU)", [*small, "--engine", "deepspeed"], cap_s=600)
        run.foley("episode 0.05 min (CPU)", ["bench", "episode", "--minutes", "0.05", "--batch", "2"], cap_s=900)
    run.write()
    print((out_dir / "gpu_bench.md").read_text())


if __name__ == "__main__":
    main()
