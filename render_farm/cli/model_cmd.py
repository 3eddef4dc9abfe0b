"""`foley train`, `foley eval toyworld`, `foley bench model`: the model's own commands."""
from __future__ import annotations

import json
import shlex
import sys
import time

import click


@click.command("train")
@click.option("--variant", default="tiny", show_default=True, help="Model variant from the config registry.")
@click.option("--minutes", type=float, default=35.0, show_default=True, help="Wall-clock budget over all stages.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stage", "stages", multiple=True, type=click.Choice(["vae", "dit", "stereo", "vocoder"]),
              help="Run only these stages (repeatable); default all, in order.")
@click.option("--no-resume", is_flag=True, help="Start from scratch even if OUT/state.pt exists.")
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads for training.")
def train_cmd(variant: str, minutes: float, out_dir: str, seed: int, stages: tuple[str, ...], no_resume: bool,
              threads: int) -> None:
    """Train a model variant on the toy world (resumable; checkpoint in OUT/checkpoint)."""
    from foley_model.train import STAGES, train

    command = "foley " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = train(variant, minutes, out_dir, seed, resume=not no_resume, stages=stages or STAGES, threads=threads,
                 print_fn=lambda s: click.echo(s), command=command)
    click.echo(f"checkpoint: {path}")


@click.group("eval")
def eval_group() -> None:
    """Evaluate a model checkpoint."""


@eval_group.command("toyworld")
@click.option("--checkpoint", "checkpoint", default=None, type=click.Path(), help="Checkpoint dir (default: shipped tiny).")
@click.option("--clips", type=int, default=50, show_default=True)
@click.option("--modes", default="model,upper,lower", show_default=True, help="Comma list of model,upper,lower.")
@click.option("--steps", type=int, default=None, help="Euler steps (default: the config's).")
@click.option("--cfg-scale", type=float, default=None, help="CFG scale (default: the config's).")
@click.option("--vocoder", type=click.Choice(["griffin_lim", "neural"]), default=None)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--update-card", is_flag=True, help="Write the metrics into the checkpoint's card.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def eval_toyworld(checkpoint, clips, modes, steps, cfg_scale, vocoder, threads, update_card, as_json) -> None:
    """Held-out toy-world clips: F1 +-50/100 ms, offset, false onsets/min, kind and side accuracy."""
    import torch

    from foley_model.checkpoint import load_checkpoint, update_card as write_card
    from foley_model.errors import CheckpointError
    from foley_model.eval_run import MODES, evaluate, format_table

    torch.set_num_threads(threads)
    wanted = tuple(m.strip() for m in modes.split(",") if m.strip())
    bad = [m for m in wanted if m not in MODES]
    if bad:
        raise click.BadParameter(f"unknown modes {bad}; known: {list(MODES)}", param_hint="--modes")
    try:
        model, card = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    results = evaluate(model, clips, wanted, steps=steps, cfg_scale=cfg_scale, vocoder=vocoder,
                       print_fn=(lambda s: click.echo(s, err=True)))
    settings = {"steps": steps or model.cfg.sampling.steps,
                "cfg_scale": cfg_scale if cfg_scale is not None else model.cfg.sampling.cfg_scale,
                "vocoder": vocoder or model.cfg.vocoder.default, "clips": clips, "style": "heldout"}
    if update_card:
        from foley_model.checkpoint import default_checkpoint_path
        write_card(checkpoint or default_checkpoint_path(), metrics={"toyworld_heldout": results, "settings": settings})
    if as_json:
        click.echo(json.dumps({"results": results, "settings": settings}, indent=2))
    else:
        click.echo(format_table(results))


@click.group("bench")
def bench_group() -> None:
    """Benchmarks."""


@bench_group.command("model")
@click.option("--variant", default="tiny", show_default=True)
@click.option("--batch", "batches", default="1,4,16", show_default=True, help="Comma list of batch sizes.")
@click.option("--steps", type=int, default=None, help="Euler steps (default: the config's; kling on CPU: 1).")
@click.option("--duration", "duration_s", type=float, default=None,
              help="Window seconds (default: the config's window; kling on CPU: 1).")
@click.option("--engine", type=click.Choice(["eager"]), default="eager", show_default=True)
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's).")
@click.option("--json", "as_json", is_flag=True)
def bench_model(variant, batches, steps, duration_s, engine, threads, as_json) -> None:
    """Parameters, FLOPs per audio-second and audio-seconds per second of latent sampling (CFG batched)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from foley_model.configs import get_config
    from foley_model.model import FoleyModel

    if threads:
        torch.set_num_threads(threads)
    cfg = get_config(variant)
    cpu_big = cfg.name != "tiny" and not torch.cuda.is_available()
    steps = steps or (1 if cpu_big else cfg.sampling.steps)
    duration_s = duration_s or (1.0 if cpu_big else cfg.window_s)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    model = FoleyModel(cfg).to(dev).eval()
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    n_dit = sum(p.numel() for p in model.dit.parameters())
    enc = cfg.encoders

    def inputs(B: int):
        g = torch.Generator().manual_seed(0)
        nf = int(duration_s * enc.sync_fps) + 2
        if enc.kind == "tiny":
            frames = torch.randint(0, 256, (B, nf, 64, 64, 3), dtype=torch.uint8, generator=g)
            cond = model.prepare_conditions(frames, ["a ball bouncing"] * B, [0.0] * B, [duration_s] * B)
        else:
            cond = model.prepare_conditions(
                None, [""] * B, [0.0] * B, [duration_s] * B,
                sync_feats=torch.randn(B, nf, enc.sync_dim, generator=g),
                semantic_feats=torch.randn(B, int(duration_s * enc.semantic_fps) + 2, enc.semantic_dim, generator=g),
                text_feats=torch.randn(B, 8, enc.text_dim, generator=g))
        noise = torch.randn(B, cond.latent_mask.shape[1], cfg.vae.latent_channels, generator=g).to(dev)
        return cond, noise

    with torch.no_grad():
        cond, noise = inputs(1)
        with FlopCounterMode(display=False) as fc:
            model.sample_latents(cond, noise, steps=steps)
        flops_window = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            model.decode_mel(noise)
        flops_decode = fc.get_total_flops()
        rows = []
        for B in [int(b) for b in batches.split(",") if b.strip()]:
            cond, noise = inputs(B)
            model.sample_latents(cond, noise, steps=1)  # warm-up
            if dev == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            model.sample_latents(cond, noise, steps=steps)
            if dev == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
            rows.append({"batch": B, "seconds": round(dt, 4), "audio_s_per_s": round(B * duration_s / dt, 3)})
    base = rows[0]["audio_s_per_s"] if rows and rows[0]["batch"] == 1 else None
    result = {"variant": cfg.name, "engine": engine, "device": dev, "threads": torch.get_num_threads(),
              "parameters": n_params, "dit_parameters": n_dit, "build_s": round(build_s, 2),
              "steps": steps, "cfg_scale": cfg.sampling.cfg_scale, "window_s": duration_s,
              "latent_frames": cfg.latent_frames(duration_s),
              "gflops_per_audio_s_sampling": round(flops_window / duration_s / 1e9, 3),
              "gflops_per_audio_s_vae_decode": round(flops_decode / duration_s / 1e9, 4),
              "eager_one_window_audio_s_per_s": base, "rows": rows}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"variant {cfg.name}: {n_params / 1e6:.2f} M parameters (DiT {n_dit / 1e6:.2f} M), device {dev}, "
               f"{torch.get_num_threads()} threads, engine {engine}")
    click.echo(f"window {duration_s:g} s = {result['latent_frames']} latent frames, {steps} steps, "
               f"CFG {cfg.sampling.cfg_scale:g} (cond+uncond in one batch)")
    click.echo(f"FLOPs per audio-second: sampling {result['gflops_per_audio_s_sampling']:.3f} GFLOP, "
               f"VAE decode {result['gflops_per_audio_s_vae_decode']:.4f} GFLOP")
    for r in rows:
        rel = f"  ({r['audio_s_per_s'] / base:.2f}x the one-window eager baseline)" if base else ""
        click.echo(f"batch {r['batch']:>3}: {r['seconds']:.3f} s, {r['audio_s_per_s']:.2f} audio-s/s{rel}")


def register(group: click.Group) -> None:
    group.add_command(train_cmd)
    group.add_command(eval_group)
    group.add_command(bench_group)
