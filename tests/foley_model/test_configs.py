import dataclasses

import pytest
import torch

from foley_model.configs import config_from_dict, config_to_dict, get_config
from foley_model.errors import UnknownVariant
from foley_model.model import FoleyModel


def test_tiny_derived_shapes():
    cfg = get_config("tiny")
    assert cfg.latent_rate_hz == 31.25
    assert cfg.latent_frames(4.0) == 125 and cfg.latent_frames(10.0) == 313
    assert cfg.mel_frames(125) == 250 and cfg.num_samples(125) == 64000


def test_kling_derived_shapes():
    cfg = get_config("kling")
    assert abs(cfg.latent_rate_hz - 43.066) < 1e-3, cfg.latent_rate_hz
    assert cfg.vae.latent_channels == 40 and cfg.audio.n_mels == 128


def test_config_json_round_trip_and_frozen():
    for name in ("tiny", "kling"):
        cfg = get_config(name)
        assert config_from_dict(config_to_dict(cfg)) == cfg
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.window_s = 1.0  # type: ignore[misc]
    with pytest.raises(UnknownVariant):
        get_config("huge")


def test_kling_constructs_with_about_one_billion_parameters():
    with torch.device("meta"):
        model = FoleyModel(get_config("kling"))
    n = sum(p.numel() for p in model.parameters())
    n_dit = sum(p.numel() for p in model.dit.parameters())
    assert 0.9e9 < n_dit and n < 1.2e9, f"{n=} {n_dit=}"


def test_tiny_sizes_match_the_notes():
    model = FoleyModel(get_config("tiny"))
    n_vae = sum(p.numel() for p in model.vae.parameters())
    n_cnn = sum(p.numel() for p in model.frame_encoder.convs.parameters())
    assert 0.9e6 < n_vae < 1.3e6, n_vae
    assert n_cnn < 40_000, n_cnn
