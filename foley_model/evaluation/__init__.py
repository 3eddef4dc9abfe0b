"""Judging metrics for generated foley on the toy world (TOYWORLD.md "How the model is judged").

    score = score_clip(generated_audio, 16000, clip.events)   # one clip
    aggregate([score, ...])                                    # f1_50, f1_100, offset_ms, false_per_min,
                                                               # kind_acc, side_acc, n_events, n_clips
    seam_ratio(audio, 16000, join_times_s, rng_seed=0)         # 1.0: joins inaudible
    cut_flux_ratio(audios, 16000, clips)                       # ~1.6 (truth): no knock at shot cuts
"""

from .kinds import classify_kind, kind_features, side_of
from .matching import f1, match_onsets
from .onsets import OnsetParams, detect_onsets, novelty
from .scoring import ClipScore, aggregate, score_clip
from .seams import cut_flux_ratio, seam_ratio

__all__ = ["ClipScore", "OnsetParams", "aggregate", "classify_kind", "detect_onsets", "f1", "kind_features",
           "match_onsets", "novelty", "score_clip", "seam_ratio", "side_of",
           "cut_flux_ratio"]
