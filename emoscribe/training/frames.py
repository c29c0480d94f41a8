"""Frame-level hidden states of one encoder layer, per channel variant, cached on disk for partial fine-tuning.

Training the top blocks of the encoder needs, per clip, the frames that enter the lowest trained block; the
blocks below stay frozen, so those frames (and the statistics of the layers below, already in the feature
cache) are computed once. Clips have different lengths, so each variant is one ragged array: the frames of all
clips end to end, in fp16, with the offset of each clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emoscribe.datasets import Utterance
from emoscribe.training.cache import clips_key
from emoscribe.training.features import VARIANTS, encoded_batches, variant_clips
from emoscribe.training.whisper import LogMel, WhisperAudioEncoder


@dataclass(frozen=True, slots=True)
class FrameSet:
    """Hidden state ``layer`` of every clip, per variant: ``frames (n_frames, d)``, ``offsets (n_clips + 1,)``."""

    layer: int
    frames: dict[str, np.ndarray]
    offsets: dict[str, np.ndarray]

    def batch(self, variants: Sequence[str], rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip ``rows[i]`` of ``variants[i]``, zero-padded: ``(batch, T, d)`` float32 and mask ``(batch, T)``."""
        spans = [(self.offsets[v][r], self.offsets[v][r + 1]) for v, r in zip(variants, rows, strict=True)]
        length = max(end - start for start, end in spans)
        width = next(iter(self.frames.values())).shape[1]
        x = np.zeros((len(spans), length, width), dtype=np.float32)
        mask = np.zeros((len(spans), length), dtype=bool)
        for i, (variant, (start, end)) in enumerate(zip(variants, spans, strict=True)):
            x[i, : end - start] = self.frames[variant][start:end]
            mask[i, : end - start] = True
        return torch.from_numpy(x), torch.from_numpy(mask)


def encode_frames(
    clips: Sequence[np.ndarray], logmel: LogMel, encoder: WhisperAudioEncoder, layers: Sequence[int]
) -> dict[int, list[np.ndarray]]:
    """Valid frames ``(T_i, d)`` (fp16) of hidden states ``layers`` of each clip."""
    out: dict[int, list[np.ndarray | None]] = {layer: [None] * len(clips) for layer in layers}
    for index, hidden, token_mask in encoded_batches(clips, logmel, encoder):
        counts = token_mask.sum(dim=1).tolist()
        for layer in layers:
            values = hidden[layer].cpu().numpy().astype(np.float16)
            for row, i in enumerate(index):
                out[layer][i] = values[row, : counts[row]]
    return out


def cached_frames(
    utterances: Sequence[Utterance],
    encoder_name: str,
    logmel: LogMel,
    encoder: WhisperAudioEncoder,
    cache_dir: Path,
    layers: Sequence[int],
    variants: Sequence[str] = tuple(VARIANTS),
    seed: int = 0,
) -> dict[int, FrameSet]:
    """Frames of hidden states ``layers``, from ``cache_dir`` when present; missing ones computed in one pass."""
    key = clips_key(utterances, encoder_name, seed)
    out: dict[int, FrameSet] = {layer: FrameSet(layer, {}, {}) for layer in layers}
    for variant in variants:
        paths = {layer: cache_dir / f"{encoder_name}-frames{layer}-{variant}-{key}.npz" for layer in layers}
        missing = [layer for layer, path in paths.items() if not path.exists()]
        if missing:
            parts: dict[int, list[np.ndarray]] = {layer: [] for layer in missing}
            for clips in variant_clips(utterances, variant, seed, desc=f"{encoder_name} {variant} frames"):
                for layer, frames in encode_frames(clips, logmel, encoder, missing).items():
                    parts[layer].extend(frames)
            cache_dir.mkdir(parents=True, exist_ok=True)
            for layer in missing:
                offsets = np.concatenate([[0], np.cumsum([len(f) for f in parts[layer]])])
                np.savez(paths[layer], frames=np.concatenate(parts[layer]), offsets=offsets)
        for layer, path in paths.items():
            with np.load(path) as stored:
                out[layer].frames[variant] = stored["frames"]
                out[layer].offsets[variant] = stored["offsets"]
    return out
