"""Bundled demo clips (RAVDESS excerpts, CC BY-NC-SA 4.0: see ATTRIBUTION.md beside this file)."""

from __future__ import annotations

from pathlib import Path


def demo_clips() -> list[Path]:
    """The demo clips, in a stable order; :func:`emoscribe.corpus.parse_ravdess_name` reads their labels."""
    return sorted(Path(__file__).parent.glob("*.flac"))
