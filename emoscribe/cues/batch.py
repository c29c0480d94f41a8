"""Cues of many files at once, spread over worker processes (Praat is single-threaded per analysis)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from emoscribe.audio import load_audio
from emoscribe.cues.model import Cues
from emoscribe.cues.tracker import extract_cues
from emoscribe.telephony import Codec, telephone


def file_cues(path: str | Path, codec: Codec | None = None) -> Cues:
    """Cues of one audio file, decoded and resampled to 16 kHz mono; with ``codec``, as heard through an
    8 kHz telephone channel of that codec (``none``: band-limited only)."""
    samples = load_audio(path)[0]
    return extract_cues(samples if codec is None else telephone(samples, codec=codec))


def files_cues(paths: Sequence[str | Path], workers: int | None = None, codec: Codec | None = None) -> list[Cues]:
    """Cues of each file, in order; ``workers`` defaults to the number of cores."""
    workers = workers or os.cpu_count() or 1
    job = partial(file_cues, codec=codec)
    if workers == 1 or len(paths) < 2:
        return [job(p) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(job, paths, chunksize=16))
