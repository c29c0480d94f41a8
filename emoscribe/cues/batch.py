"""Cues of many files at once, spread over worker processes (Praat is single-threaded per analysis)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from emoscribe.audio import load_audio
from emoscribe.cues.model import Cues
from emoscribe.cues.tracker import extract_cues


def file_cues(path: str | Path) -> Cues:
    """Cues of one audio file, decoded and resampled to 16 kHz mono."""
    return extract_cues(load_audio(path)[0])


def files_cues(paths: Sequence[str | Path], workers: int | None = None) -> list[Cues]:
    """Cues of each file, in order; ``workers`` defaults to the number of cores."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(paths) < 2:
        return [file_cues(p) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(file_cues, paths, chunksize=16))
