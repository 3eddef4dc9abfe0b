"""`foley train`, `foley eval toyworld`: the model's own commands (benchmarks: bench_cmd)."""
from __future__ import annotations

import json
import shlex
import sys

import click


@click.command("train")
@click.option("--variant", default="tiny", show_default=True, help="Model variant from the config registry.")
@click.option("--minutes", type=float, default=35.0, show_default=True, help="Wall-clock budget over all stages.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stage", "stages", multiple=True, type=click.Choice(["vae", "dit", "decoder", "judge", "cue", "stereo", "vocoder"]),
              help="Run only these stages (repeatable), in training order; default vae, dit, judge, cue, stereo, "
                   "vocoder (decoder: refine the Mel-VAE decoder with the encoder frozen, opt-in; judge: the picture "
                   "onset judge that reranks sampled candidates, on the frozen frame encoder; cue: the DiT learns "
                   "the judge's onset probability as a sync-path cue, frame encoder and judge frozen).")
@click.option("--no-resume", is_flag=True, help="Start from scratch even if OUT/state.pt exists.")
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads for training.")
@click.option("--init-from", "init_from", default=None, type=click.Path(exists=True),
              help="Start OUT (when it holds no state.pt) from this checkpoint, e.g. to add a stage to the shipped model.")
def train_cmd(variant: str, minutes: float, out_dir: str, seed: int, stages: tuple[str, ...], no_resume: bool,
              threads: int, init_from: str | None) -> None:
    """Train a model variant on the toy world (resumable; checkpoint in OUT/checkpoint)."""
    from foley_model.errors import TrainingError
    from foley_model.train import DEFAULT_STAGES, train

    command = "foley " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        path = train(variant, minutes, out_dir, seed, resume=not no_resume, stages=stages or DEFAULT_STAGES,
                     threads=threads, print_fn=lambda s: click.echo(s), command=command, init_from=init_from)
    except TrainingError as exc:
        raise click.ClickException(str(exc)) from None
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
@click.option("--candidates", type=click.IntRange(1, 16), default=None,
              help="Candidates per clip the picture onset judge chooses from (default: the config's; 1: none).")
@click.option("--stream", type=click.Choice(["heldout", "validation"]), default="heldout", show_default=True,
              help="Which held-out clips: the report's, or the second stream that settings are chosen on.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--update-card", is_flag=True, help="Write the metrics into the checkpoint's card.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def eval_toyworld(checkpoint, clips, modes, steps, cfg_scale, vocoder, candidates, stream, threads, update_card,
                  as_json) -> None:
    """Held-out toy-world clips: F1 +-50/100 ms, offset, false onsets/min, kind and side accuracy."""
    import torch

    from foley_model.checkpoint import load_checkpoint, update_card as write_card
    from foley_model.errors import CheckpointError
    from foley_model.eval_run import MODES, STREAMS, evaluate, format_table

    torch.set_num_threads(threads)
    if update_card and stream != "heldout":
        raise click.BadParameter("the card records the held-out stream only", param_hint="--update-card")
    wanted = tuple(m.strip() for m in modes.split(",") if m.strip())
    bad = [m for m in wanted if m not in MODES]
    if bad:
        raise click.BadParameter(f"unknown modes {bad}; known: {list(MODES)}", param_hint="--modes")
    try:
        model, card = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    results = evaluate(model, clips, wanted, steps=steps, cfg_scale=cfg_scale, vocoder=vocoder,
                       candidates=candidates, stream=STREAMS[stream], print_fn=(lambda s: click.echo(s, err=True)))
    settings = {"steps": steps or model.cfg.sampling.steps,
                "cfg_scale": cfg_scale if cfg_scale is not None else model.cfg.sampling.cfg_scale,
                "vocoder": vocoder or model.cfg.vocoder.default, "clips": clips, "style": "heldout", "stream": stream,
                "candidates": candidates or model.cfg.sampling.candidates}
    if update_card:
        from foley_model.checkpoint import default_checkpoint_path
        write_card(checkpoint or default_checkpoint_path(), metrics={"toyworld_heldout": results, "settings": settings})
    if as_json:
        click.echo(json.dumps({"results": results, "settings": settings}, indent=2))
    else:
        click.echo(format_table(results))


def register(group: click.Group) -> None:
    group.add_command(train_cmd)
    group.add_command(eval_group)
