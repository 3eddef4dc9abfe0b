"""Chunked stages equal whole-sequence stages, for any chunking, cascaded or not."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from render_farm.timeline.chunked import Stage, run_chunked


def _conv_stage(seed: int, context: int, factor: int) -> Stage:
    """A real 1-D conv net (zero padding at the borders) with receptive field `context`."""
    g = torch.Generator().manual_seed(seed)
    k = 2 * context + 1
    w = torch.randn(3, 3, k, generator=g) * 0.3

    def fn(x: np.ndarray, start: int = 0) -> np.ndarray:
        t = torch.from_numpy(x.T[None].astype(np.float32))  # (1, C, T)
        y = torch.nn.functional.conv1d(t, w, padding=context)  # (1, C, T)
        y = y.repeat_interleave(factor, dim=2)  # (1, C, T*factor)
        return y[0].T.numpy()

    return Stage(fn, context, factor)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    chunk=st.integers(1, 64),
    push=st.integers(1, 50),
    c1=st.integers(0, 6),
    c2=st.integers(0, 6),
    f1=st.integers(1, 3),
)
def test_cascade_of_chunked_stages_equals_whole(n: int, chunk: int, push: int, c1: int, c2: int, f1: int) -> None:
    x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
    s1, s2 = _conv_stage(1, c1, f1), _conv_stage(2, c2, 2)
    whole = s2.fn(s1.fn(x))
    pieces = [x[i : i + push] for i in range(0, n, push)]
    out = np.concatenate(list(run_chunked([s1, s2], pieces, chunk_frames=chunk)), axis=0)
    assert out.shape == whole.shape, f"{out.shape=} {whole.shape=}"
    np.testing.assert_allclose(out, whole, atol=1e-4)


def test_too_little_context_is_detected_by_comparison() -> None:
    """The equality above is not vacuous: declaring less context than the net uses breaks it."""
    x = np.random.default_rng(0).standard_normal((200, 3)).astype(np.float32)
    real = _conv_stage(1, 4, 1)
    lying = Stage(real.fn, context=1, factor=1)
    out = np.concatenate(list(run_chunked([lying], [x], chunk_frames=16)), axis=0)
    assert np.abs(out - real.fn(x)).max() > 1e-3
