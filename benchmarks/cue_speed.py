"""Cue-extraction speed as a real-time factor (audio seconds per second of one CPU core) on the shared corpora.

Usage: python benchmarks/cue_speed.py [--data DIR] [--clips N] [--seed S]

The process is pinned to one core, so Praat's own threads cannot make the figure look better than one core
delivers; a daemon runs one cue worker per core. Three workloads over the same clips: whole-utterance cues of
the clips as recorded (RAVDESS has about a second of silence around each sentence), the same clips cut to their
speech, and rolling cues reported every 500 ms plus the final cues. Decoding happens before the clock starts.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import parselmouth
from machine import describe_machine

from emoscribe.audio import load_audio
from emoscribe.corpus import read_manifest
from emoscribe.cues import SAMPLE_RATE, CueTracker, extract_cues

TARGET_RTF = 200.0


def measure(clips: list[np.ndarray], work: Callable[[np.ndarray], object]) -> tuple[float, float]:
    """Audio seconds per CPU second over all clips, and the slowest clip in milliseconds."""
    audio_s = sum(c.size for c in clips) / SAMPLE_RATE
    slowest = 0.0
    start = time.process_time()
    for clip in clips:
        t0 = time.process_time()
        work(clip)
        slowest = max(slowest, time.process_time() - t0)
    return audio_s / (time.process_time() - start), slowest * 1000.0


def rolling(clip: np.ndarray) -> None:
    tracker = CueTracker()
    step = SAMPLE_RATE // 2
    for at in range(0, clip.size, step):
        tracker.push(clip[at : at + step])
        tracker.cues()
    extract_cues(clip)


def speech_only(clip: np.ndarray) -> np.ndarray:
    """The clip cut to where its level comes within 35 dB of its peak (the sentence without the silence)."""
    level = 20 * np.log10(np.abs(clip) + 1e-9)
    loud = np.flatnonzero(level > level.max() - 35)
    return clip[loud[0] : loud[-1] + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data")))
    parser.add_argument("--clips", type=int, default=600, help="clips sampled from the manifest (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rows = read_manifest(args.data)
    if args.clips:
        rows = random.Random(args.seed).sample(rows, min(args.clips, len(rows)))
    clips = [load_audio(row.path)[0] for row in rows]
    trimmed = [speech_only(clip) for clip in clips]
    corpora = sorted({row.corpus for row in rows})

    print(f"machine: {describe_machine()} (pinned to one core)")
    print(f"python {platform.python_version()}, numpy {np.__version__}, parselmouth {parselmouth.VERSION}")
    audio_s = sum(c.size for c in clips) / SAMPLE_RATE
    print(
        f"clips: {len(clips)} from {args.data} ({', '.join(corpora)}; seed {args.seed}), {audio_s:.1f} s of audio"
    )
    for name, data, work in (
        ("whole-utterance cues, clips as recorded", clips, extract_cues),
        ("whole-utterance cues, speech only", trimmed, extract_cues),
        ("rolling cues every 500 ms + final", clips, rolling),
    ):
        rtf, slowest = measure(data, work)
        verdict = f"{'meets' if rtf >= TARGET_RTF else 'misses'} {TARGET_RTF:.0f}x"
        print(f"{name:42s} {rtf:6.1f}x real time per core ({verdict}); slowest clip {slowest:.1f} ms")


if __name__ == "__main__":
    main()
