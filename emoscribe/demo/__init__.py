"""Bundled demo clips (RAVDESS excerpts, CC BY-NC-SA 4.0: see ATTRIBUTION.md beside this file)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from emoscribe.corpus import parse_ravdess_name


def demo_clips() -> list[Path]:
    """The demo clips, in a stable order; :func:`emoscribe.corpus.parse_ravdess_name` reads their labels."""
    return sorted(Path(__file__).parent.glob("*.flac"))


def demo_streams() -> dict[str, list[Path]]:
    """The demo clips as one stream per speaker (``demo-actor03``, ...), as call legs would carry them: the
    daemon judges each utterance against its stream's earlier ones, so a stream must not mix voices."""
    streams: dict[str, list[Path]] = defaultdict(list)
    for path in demo_clips():
        streams[f"demo-actor{parse_ravdess_name(path.name).actor:02d}"].append(path)
    return dict(streams)
