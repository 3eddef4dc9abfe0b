"""Per-clip scores against ground truth and their aggregate (TOYWORLD.md "How the model is judged").

Definitions (all on the generated audio, never on the model's internals):

* sync: detected onsets matched one-to-one to ground-truth impact and beep onsets
  (`matching.match_onsets`); F1 at +-50 ms and +-100 ms, micro-averaged over clips (summed counts);
  ``offset_ms``: mean |detected - truth| of the pairs matched at +-100 ms.
* kind: `classify_kind` at each detected onset matched at +-100 ms, against the truth's kind.
* side: `side_of` at each such onset against sign(x); events with |x| < 0.15 (centre) are skipped.
* silence: a *false onset* is a detection unmatched at +-100 ms that is also farther than 100 ms
  from every ground-truth event onset of any kind (slide starts included: a slide may start with
  an audible scrape, and a second detection right at a real event is not "sound where nothing
  happens" -- F1 already charges it); reported per minute of audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .kinds import classify_kind, side_of
from .matching import f1, match_onsets
from .onsets import detect_onsets

JUDGED = ("impact", "beep")
CENTRE_X = 0.15
TOL_NARROW_S = 0.05
TOL_WIDE_S = 0.1


@dataclass(frozen=True)
class ClipScore:
    n_truth: int
    n_detected: int
    matched_50: int
    matched_100: int
    abs_offsets_ms: tuple[float, ...]  # of the pairs matched at +-100 ms
    kind_correct: int
    kind_total: int
    side_correct: int
    side_total: int
    false_onsets: int
    duration_s: float

    @property
    def f1_50(self) -> float:
        return f1(self.matched_50, self.n_detected, self.n_truth)

    @property
    def f1_100(self) -> float:
        return f1(self.matched_100, self.n_detected, self.n_truth)


def false_onsets(det: np.ndarray, events: Sequence, matched: set[int]) -> list[float]:
    """The detections (seconds) that count as false: not in `matched` (indices of det paired at +-100 ms)
    and farther than 100 ms from every ground-truth onset of any kind (slide starts included)."""
    all_onsets = np.asarray([e.onset_s for e in events], dtype=np.float64)
    return [float(t) for i, t in enumerate(det) if i not in matched
            and (len(all_onsets) == 0 or np.min(np.abs(all_onsets - t)) > TOL_WIDE_S)]


def score_clip(audio: np.ndarray, sample_rate_hz: int, events: Sequence,
               detected_s: np.ndarray | None = None) -> ClipScore:
    """Score generated ``audio`` (2, n) against the clip's ground-truth ``events`` (toyworld.Event).

    ``detected_s``: onsets already detected in ``audio`` (default: `detect_onsets`).
    """
    audio = np.asarray(audio)
    duration_s = audio.shape[-1] / sample_rate_hz
    det = detect_onsets(audio, sample_rate_hz) if detected_s is None else np.asarray(detected_s, dtype=np.float64)
    judged = [e for e in events if e.kind in JUDGED]
    truth = [e.onset_s for e in judged]
    m50 = match_onsets(det, truth, TOL_NARROW_S)
    m100 = match_onsets(det, truth, TOL_WIDE_S)
    offsets, kind_ok, side_ok, side_n = [], 0, 0, 0
    for i, j in m100:
        e = judged[j]
        offsets.append(abs(det[i] - e.onset_s) * 1000.0)
        kind_ok += classify_kind(audio, sample_rate_hz, det[i]) == e.kind
        if abs(e.x) >= CENTRE_X:
            side_n += 1
            side_ok += side_of(audio, sample_rate_hz, det[i]) == int(np.sign(e.x))
    false = len(false_onsets(det, events, {i for i, _ in m100}))
    return ClipScore(len(truth), len(det), len(m50), len(m100), tuple(offsets), int(kind_ok), len(m100),
                     int(side_ok), side_n, false, float(duration_s))


def aggregate(scores: Sequence[ClipScore]) -> dict:
    """Micro-averaged metrics over clips: f1_50, f1_100, offset_ms, false_per_min, kind_acc,
    side_acc, n_events, n_clips (NaN where a metric has nothing to average)."""
    n_truth = sum(s.n_truth for s in scores)
    n_det = sum(s.n_detected for s in scores)
    offsets = [o for s in scores for o in s.abs_offsets_ms]
    kind_total = sum(s.kind_total for s in scores)
    side_total = sum(s.side_total for s in scores)
    minutes = sum(s.duration_s for s in scores) / 60.0
    nan = float("nan")
    return {
        "f1_50": f1(sum(s.matched_50 for s in scores), n_det, n_truth),
        "f1_100": f1(sum(s.matched_100 for s in scores), n_det, n_truth),
        "offset_ms": float(np.mean(offsets)) if offsets else nan,
        "false_per_min": sum(s.false_onsets for s in scores) / minutes if minutes > 0 else nan,
        "kind_acc": sum(s.kind_correct for s in scores) / kind_total if kind_total else nan,
        "side_acc": sum(s.side_correct for s in scores) / side_total if side_total else nan,
        "n_events": n_truth,
        "n_clips": len(scores),
    }
