"""Errors of the model package (foley_model may not import storage; callers translate these)."""
from __future__ import annotations


class ModelError(Exception):
    """Base class of foley_model errors."""


class CheckpointError(ModelError, ValueError):
    """A checkpoint is missing, corrupt (SHA-256 mismatch) or does not fit the model."""


class UnknownVariant(ModelError, KeyError):
    """No model variant of that name in the registry."""


class TrainingError(ModelError, ValueError):
    """A training run asks for a stage its run directory cannot support yet."""
