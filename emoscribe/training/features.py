"""Frozen-encoder features of every clip, per channel variant, computed once and cached on disk.

With the encoder frozen, training only ever needs each clip's per-layer statistics, so they are computed once
per (encoder, channel variant) and reused by every run, fold and ablation: training then takes seconds on a CPU.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emoscribe.audio import load_audio
from emoscribe.datasets import Utterance
from emoscribe.telephony import TelephoneAugmenter, telephone
from emoscribe.training.cache import clips_key, corpus_rows
from emoscribe.training.heads import layer_statistics
from emoscribe.training.whisper import LogMel, WhisperAudioEncoder

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

VARIANTS: dict[str, Transform] = {
    "clean": lambda x, rng: x,
    "ulaw": lambda x, rng: telephone(x, codec="ulaw"),
    "augment-0": lambda x, rng: TelephoneAugmenter()(x, rng),
    "augment-1": lambda x, rng: TelephoneAugmenter()(x, rng),
}
"""Channel variants: clean 16 kHz; 8 kHz G.711 mu-law (the telephone evaluation column); two random telephone
augmentations (codec, band limit, packet loss) for training."""

CHUNK = 256
"""Clips decoded and encoded at a time, which bounds memory."""

MAX_SECONDS = 30.0
"""Whisper's context: longer clips are cut (no clip of the shared corpora comes near it)."""


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Per-layer statistics ``(n_clips, n_layers, 2 * d_model)`` of each variant, rows in utterance order
    (float32; cached as fp16)."""

    encoder: str
    stats: dict[str, np.ndarray]

    @property
    def n_layers(self) -> int:
        return next(iter(self.stats.values())).shape[1]

    @property
    def d_audio(self) -> int:
        return next(iter(self.stats.values())).shape[2] // 2


@torch.inference_mode()
def encoded_batches(
    clips: Sequence[np.ndarray], logmel: LogMel, encoder: WhisperAudioEncoder, batch_size: int = 16
) -> Iterator[tuple[np.ndarray, tuple[torch.Tensor, ...], torch.Tensor]]:
    """The clips through the encoder, batched by similar length so padding costs little: per batch, the clip
    indices, the hidden states and the valid-token mask ``(batch, T)``, on the encoder's device."""
    device = next(encoder.parameters()).device
    order = np.argsort([len(c) for c in clips])
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        lengths = torch.tensor([len(clips[i]) for i in index])
        batch = torch.zeros(len(index), int(lengths.max()))
        for row, i in enumerate(index):
            batch[row, : len(clips[i])] = torch.from_numpy(clips[i].astype(np.float32))
        mel, frame_mask = logmel(batch.to(device), lengths.to(device))
        hidden = encoder(mel, frame_mask)
        yield index, hidden, frame_mask[:, ::2][:, : hidden[0].shape[1]]


@torch.inference_mode()
def encode(clips: Sequence[np.ndarray], logmel: LogMel, encoder: WhisperAudioEncoder) -> np.ndarray:
    """Per-layer statistics ``(n_clips, n_layers, 2d)`` of each clip, in fp16."""
    out: list[np.ndarray | None] = [None] * len(clips)
    for index, hidden, token_mask in encoded_batches(clips, logmel, encoder):
        stats = layer_statistics(hidden, token_mask).cpu().numpy().astype(np.float16)
        for row, i in enumerate(index):
            out[i] = stats[row]
    return np.stack(out)


def cached_features(
    utterances: Sequence[Utterance],
    encoder_name: str,
    logmel: LogMel,
    encoder: WhisperAudioEncoder,
    cache_dir: Path,
    variants: Sequence[str] = tuple(VARIANTS),
    seed: int = 0,
) -> FeatureSet:
    """Features of every variant, one cache file per (corpus, variant): read where it exists, else encoded."""
    groups = corpus_rows(utterances)
    stats = {}
    for variant in variants:
        out: np.ndarray | None = None
        for corpus, rows in groups.items():
            members = [utterances[i] for i in rows]
            path = cache_dir / f"{encoder_name}-{variant}-{clips_key(members, encoder_name, seed)}.npy"
            if not path.exists():
                chunks = variant_clips(members, variant, seed, desc=f"{encoder_name} {corpus} {variant}")
                parts = [encode(clips, logmel, encoder) for clips in chunks]
                cache_dir.mkdir(parents=True, exist_ok=True)
                np.save(path, np.concatenate(parts))
            values = np.load(path)
            if out is None:  # float32 in memory (the files are fp16): training reads rows many times per epoch
                out = np.empty((len(utterances), *values.shape[1:]), dtype=np.float32)
            out[rows] = values
        stats[variant] = out
    return FeatureSet(encoder=encoder_name, stats=stats)


def variant_clips(
    utterances: Sequence[Utterance], variant: str, seed: int, desc: str
) -> Iterator[list[np.ndarray]]:
    """The clips through channel ``variant``, ``CHUNK`` at a time; each clip's augmentation is seeded by its
    position, so every cache built from the same clips sees the same audio."""
    salt = zlib.crc32(variant.encode())
    for start in tqdm(range(0, len(utterances), CHUNK), desc=desc, unit="chunk"):
        yield [
            VARIANTS[variant](
                load_audio(u.path)[0][: int(MAX_SECONDS * 16_000)].astype(np.float32),
                np.random.default_rng([seed, salt, start + offset]),
            )
            for offset, u in enumerate(utterances[start : start + CHUNK])
        ]
