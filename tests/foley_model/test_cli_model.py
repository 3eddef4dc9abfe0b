import json

from click.testing import CliRunner

from render_farm.cli import cli


def test_bench_model_tiny_reports_params_flops_and_speed():
    res = CliRunner().invoke(cli, ["bench", "model", "--variant", "tiny", "--batch", "1,2", "--steps", "2",
                                   "--duration", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["parameters"] > 1e6 and out["gflops_per_audio_s_sampling"] > 0
    assert [r["batch"] for r in out["rows"]] == [1, 2] and out["eager_one_window_audio_s_per_s"] > 0


def test_eval_refuses_a_corrupt_checkpoint(tmp_path):
    from foley_model.checkpoint import save_checkpoint
    from foley_model.configs import get_config
    from foley_model.model import FoleyModel
    save_checkpoint(FoleyModel(get_config("tiny")), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    res = CliRunner().invoke(cli, ["eval", "toyworld", "--checkpoint", str(tmp_path), "--clips", "1"])
    assert res.exit_code != 0 and "sha256" in res.output


def test_eval_toyworld_json_on_an_untrained_model(tmp_path):
    from foley_model.checkpoint import save_checkpoint
    from foley_model.configs import get_config
    from foley_model.model import FoleyModel
    save_checkpoint(FoleyModel(get_config("tiny")), tmp_path)
    res = CliRunner().invoke(cli, ["eval", "toyworld", "--checkpoint", str(tmp_path), "--clips", "1",
                                   "--modes", "model", "--steps", "1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert set(out["results"]) == {"model"} and out["results"]["model"]["n_clips"] == 1


def test_train_refuses_the_decoder_stage_before_the_dit(tmp_path):
    res = CliRunner().invoke(cli, ["train", "--stage", "decoder", "--minutes", "0.1", "--out", str(tmp_path / "run")])
    assert res.exit_code != 0 and "no trained DiT" in res.output, res.output
    assert not (tmp_path / "run" / "checkpoint").exists() and not (tmp_path / "run" / "state.pt").exists()


def test_the_validation_stream_is_other_clips_and_never_reaches_the_card(tmp_path):
    from foley_model.checkpoint import read_card, save_checkpoint
    from foley_model.configs import get_config
    from foley_model.model import FoleyModel
    save_checkpoint(FoleyModel(get_config("tiny")), tmp_path)
    before = read_card(tmp_path)
    res = CliRunner().invoke(cli, ["eval", "toyworld", "--checkpoint", str(tmp_path), "--clips", "1",
                                   "--modes", "upper", "--stream", "validation", "--update-card"])
    assert res.exit_code == 2 and "held-out stream only" in res.output
    assert read_card(tmp_path) == before
    events = {}
    for stream in ("heldout", "validation"):
        res = CliRunner().invoke(cli, ["eval", "toyworld", "--checkpoint", str(tmp_path), "--clips", "2",
                                       "--modes", "upper", "--stream", stream, "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout[res.stdout.index("{"):])
        assert out["settings"]["stream"] == stream
        events[stream] = out["results"]["upper"]["n_events"]
    from foley_model.eval_run import EVAL_STREAM_SEED, STREAMS
    from foley_model.toyworld import GenStyle, clip_seed, make_clip
    expect = {s: sum(len(make_clip(clip_seed(EVAL_STREAM_SEED + STREAMS[s], i), size=(96, 54),
                                   style=GenStyle.heldout()).judged_events) for i in range(2)) for s in STREAMS}
    assert events == expect and clip_seed(EVAL_STREAM_SEED, 0) != clip_seed(EVAL_STREAM_SEED + 1, 0)
