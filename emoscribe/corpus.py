"""The corpus manifest (``manifest.csv`` of the shared data): one row per clip, paths relative to the folder."""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "EMOSCRIBE_DATA"
"""Environment variable naming the corpus folder (the one holding ``manifest.csv``)."""

VALIDATION_SPEAKERS = frozenset({"ravdess-17", "ravdess-18", "ravdess-19", "ravdess-20", "tess-YAF"})
"""Speakers held out of anything fitted on the corpus by default (models, bin edges), so that results reported
on them stay speaker-independent."""

COLUMNS = ("path", "corpus", "speaker", "gender", "emotion", "intensity", "text", "language", "duration_s")


@dataclass(frozen=True, slots=True)
class Clip:
    """One manifest row; ``path`` is absolute."""

    path: Path
    corpus: str
    speaker: str
    gender: str
    emotion: str
    intensity: str
    text: str
    language: str
    duration_s: float


RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}


@dataclass(frozen=True, slots=True)
class RavdessName:
    """The fields of a RAVDESS file name: ``modality-channel-emotion-intensity-statement-repetition-actor``."""

    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def sex(self) -> str:
        """RAVDESS actors with odd numbers are male, even ones female."""
        return "male" if self.actor % 2 else "female"


def parse_ravdess_name(name: str) -> RavdessName:
    """Decode a RAVDESS file name (with or without directory and extension)."""
    parts = Path(name).stem.split("-")
    if len(parts) != 7 or not all(p.isdigit() for p in parts) or parts[2] not in RAVDESS_EMOTIONS:
        raise ValueError(
            f"{name!r} is not a RAVDESS file name (expected 7 numeric fields, e.g. 03-01-05-02-01-01-12)"
        )
    return RavdessName(
        emotion=RAVDESS_EMOTIONS[parts[2]],
        intensity="strong" if parts[3] == "02" else "normal",
        statement=int(parts[4]),
        repetition=int(parts[5]),
        actor=int(parts[6]),
    )


def data_dir() -> Path | None:
    """The corpus folder from ``EMOSCRIBE_DATA``, or ``None`` where it is unset or has no manifest."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    folder = Path(value)
    return folder if (folder / "manifest.csv").is_file() else None


def read_manifest(folder: str | Path) -> list[Clip]:
    """All rows of ``folder/manifest.csv``; a missing column is an error that names it."""
    folder = Path(folder)
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{folder / 'manifest.csv'}: missing column(s) {', '.join(sorted(missing))}")
        return [
            Clip(
                **{
                    **{k: row[k] for k in COLUMNS},
                    "path": folder / row["path"],
                    "duration_s": float(row["duration_s"]),
                }
            )
            for row in reader
        ]


def stream_order(clips: Sequence[Clip], seed: int = 0) -> list[Clip]:
    """The clips grouped by speaker (sorted by id), each speaker's in one seeded random order: how a daemon
    would hear each speaker's clips as one stream, for whatever learns or judges from earlier utterances."""
    groups: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        groups[clip.speaker].append(clip)
    rng = random.Random(seed)
    ordered: list[Clip] = []
    for speaker in sorted(groups):
        members = sorted(groups[speaker], key=lambda clip: str(clip.path))
        rng.shuffle(members)
        ordered += members
    return ordered
