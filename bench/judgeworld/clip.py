"""Write one clip to disk: STEM.mp4 (video only), STEM.json (ground truth), STEM.wav (ground-truth audio)."""
from __future__ import annotations

import json
from pathlib import Path

from .audio import SAMPLE_RATE_HZ, render_audio
from .draw import frames
from .media import write_video, write_wav
from .world import Clip, truth


def write_clip(clip: Clip, out_dir: Path, stem: str, draw_objects: bool = True, with_truth: bool = True) -> Path:
    """Write the clip's files; `draw_objects=False` writes the background-only control video alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{stem}.mp4"
    write_video(video, frames(clip, draw_objects), clip.width_px, clip.height_px, clip.fps, clip.crf)
    if with_truth:
        (out_dir / f"{stem}.json").write_text(json.dumps(truth(clip), indent=1))
        write_wav(out_dir / f"{stem}.wav", render_audio(clip), SAMPLE_RATE_HZ)
    return video
