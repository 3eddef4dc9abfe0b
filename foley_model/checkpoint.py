"""Checkpoints: `model.safetensors` (weights) + `card.json` (variant, full config, training command,
generator version, seed, minutes per stage, metrics, SHA-256 of the weights file).

`load_checkpoint` verifies the SHA-256 before it trusts the weights; a mismatch is a CheckpointError.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .configs import ModelConfig, config_from_dict, config_to_dict
from .errors import CheckpointError
from .model import FoleyModel

WEIGHTS = "model.safetensors"
CARD = "card.json"


def default_checkpoint_path() -> Path:
    """The tiny checkpoint shipped in the repository."""
    return Path(__file__).resolve().parent / "checkpoints" / "tiny"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(model: FoleyModel, out_dir: str | os.PathLike, card: dict | None = None) -> Path:
    """Write weights + card into out_dir (atomically per file); returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"variant": model.cfg.name})
    os.replace(tmp, out / WEIGHTS)
    os.chmod(out / WEIGHTS, 0o644)
    full = dict(card or {})
    full.update(variant=model.cfg.name, config=config_to_dict(model.cfg), weights=WEIGHTS,
                sha256=sha256_file(out / WEIGHTS),
                parameters=sum(p.numel() for p in model.parameters()))
    tmp = out / (CARD + ".tmp")
    tmp.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / CARD)
    return out


def read_card(path: str | os.PathLike) -> dict:
    p = Path(path)
    card_path = p / CARD if p.is_dir() else p.with_name(CARD)
    if not card_path.exists():
        raise CheckpointError(f"no {CARD} next to checkpoint {str(p)!r}")
    return json.loads(card_path.read_text())


def update_card(path: str | os.PathLike, **fields) -> dict:
    """Merge fields into an existing card (e.g. metrics after evaluation); the weights hash is untouched."""
    p = Path(path)
    card_path = p / CARD if p.is_dir() else p.with_name(CARD)
    card = read_card(p)
    card.update(fields)
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def load_checkpoint(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> tuple[FoleyModel, dict]:
    """Load (model in eval mode, card) from a checkpoint directory (or its model.safetensors).

    Raises CheckpointError if files are missing, the SHA-256 differs from the card, or the weights
    do not fit the config."""
    p = Path(path) if path is not None else default_checkpoint_path()
    weights = p / WEIGHTS if p.is_dir() else p
    if not weights.exists():
        raise CheckpointError(f"checkpoint weights {str(weights)!r} not found")
    card = read_card(p)
    digest = sha256_file(weights)
    if digest != card.get("sha256"):
        raise CheckpointError(f"checkpoint {str(weights)!r} is corrupt or was changed: sha256 {digest} != "
                              f"card {card.get('sha256')}")
    cfg: ModelConfig = config_from_dict(card["config"])
    model = FoleyModel(cfg)
    state = load_file(str(weights), device=str(device))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {str(weights)!r} does not fit variant {cfg.name!r}: "
                              f"missing {missing[:5]} unexpected {unexpected[:5]}")
    return model.to(device).eval(), card
