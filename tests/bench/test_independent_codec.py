"""bench/independent_codec.py: the codec rows on ground-truth audio, and a kept render's stored latents."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bench.independent_codec import ROWS, main, upsample
from bench.judgeworld.audio import SAMPLE_RATE_HZ
from bench.judgeworld.clip import write_clip
from bench.judgeworld.world import random_clip


def test_upsample_keeps_time_and_level():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    up = upsample(tone, sr)
    assert up.shape[1] == 2 and abs(up.shape[0] - SAMPLE_RATE_HZ) <= 64
    np.testing.assert_array_equal(up[:, 0], up[:, 1])
    mid = up[SAMPLE_RATE_HZ // 4: 3 * SAMPLE_RATE_HZ // 4, 0]
    assert abs(np.sqrt((mid ** 2).mean()) - 0.5 / np.sqrt(2)) < 0.01


def test_truth_tops_the_table_and_the_codec_rows_are_scored(tmp_path, monkeypatch, capsys):
    clip = random_clip(3, 4, 6)
    write_clip(clip, tmp_path / "clips", "clip000")
    monkeypatch.setattr(sys, "argv", ["independent_codec.py", str(tmp_path)])
    main()
    out = capsys.readouterr().out
    rows = {line[:20].strip(): line[20:].split() for line in out.splitlines() if line[:20].strip() in ROWS}
    assert set(rows) == {"truth", "mel -> Griffin-Lim", "codec"}  # no foley-data: no stored latents row
    assert float(rows["truth"][0]) == 1.0  # F1 within +-50 ms of the generator's own audio
    for row in ("mel -> Griffin-Lim", "codec"):
        assert 0.0 <= float(rows[row][0]) <= 1.0


def test_a_real_renders_stored_latents_decode_to_its_output(tmp_path):
    """The stitched latents read back from a kept `foley render` (its own SQLite database and store) decode
    to audio whose loudness follows the render's delivered output."""
    import os

    import torch

    from bench.independent_codec import codec_audio, stored_latents
    from bench.independent_eval import render
    from bench.judgeworld.media import read_audio
    from foley_model.checkpoint import load_checkpoint

    clip = random_clip(11, 3, 3.5)
    video = write_clip(clip, tmp_path / "clips", "clip000")
    env = {**os.environ, "FOLEY_DATA_DIR": str(tmp_path / "foley-data")}
    render(str(Path(sys.executable).parent / "foley"), [video], tmp_path / "out", "tiny", 1, env)
    torch.set_num_threads(2)
    model, _ = load_checkpoint(None)
    latents = stored_latents(tmp_path, model.cfg.vae.latent_channels)
    assert set(latents) == {"clip000"}
    assert latents["clip000"].shape == (model.cfg.latent_frames(clip.duration_s), model.cfg.vae.latent_channels)
    mine = codec_audio(model, tmp_path / "clips" / "clip000.wav", latents["clip000"])["stored latents"][:, 0]
    out = read_audio(tmp_path / "out" / "clip000.foley.mp4", SAMPLE_RATE_HZ).mean(axis=1)

    def envelope_db(a: np.ndarray) -> np.ndarray:  # 50 ms frames
        n = SAMPLE_RATE_HZ // 20
        frames = a[: len(a) // n * n].reshape(-1, n)
        return 10 * np.log10((frames ** 2).mean(axis=1) + 1e-10)

    a, b = envelope_db(mine), envelope_db(out)
    k = min(len(a), len(b))
    assert np.corrcoef(a[:k], b[:k])[0, 1] > 0.8
    # the same latents a window late would not follow it
    assert np.corrcoef(a[10:k], b[:k - 10])[0, 1] < np.corrcoef(a[:k], b[:k])[0, 1] - 0.1
