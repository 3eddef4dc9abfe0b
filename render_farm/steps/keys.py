"""Deterministic blob-store keys: a retried step writes the same key, and conditional create
turns a second, different result into a loud Conflict instead of a silent overwrite."""
from __future__ import annotations

def input_key(sha256: str, filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[-120:] or "input"
    return f"inputs/{sha256}/{safe}"


def proxy_key(input_sha256: str, proxy_format: str) -> str:
    """The input's proxy in a named format (`media.proxy_formats`): formats never share a key."""
    return f"proxies/{input_sha256}/{proxy_format}.mp4"


def latents_key(job_id: str, window_index: int) -> str:
    return f"jobs/{job_id}/latents/w{window_index:05d}.npy"


def output_key(job_id: str, filename: str) -> str:
    return f"jobs/{job_id}/output/{filename}"
