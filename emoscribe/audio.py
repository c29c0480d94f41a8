"""Reading audio files into the 16 kHz mono float PCM that the whole project works on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from emoscribe.cues.signal import SAMPLE_RATE


class AudioFileError(OSError):
    """An audio file that cannot be read; the message names the file and the reason."""


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``(frames, channels)`` audio; 1-D input is returned as is."""
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise ValueError(f"expected (frames, channels) audio, got shape {samples.shape}")
    return samples.mean(axis=1)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono audio with soxr (VHQ), as every source of the project does."""
    if rate == target:
        return samples
    return soxr.resample(samples, rate, target, quality="VHQ")


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file (WAV, FLAC, OGG, ...), downmix to mono and resample to 16 kHz; returns samples and rate."""
    try:
        samples, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioFileError(f"{path}: cannot read audio ({error})") from error
    return resample(to_mono(samples), rate), SAMPLE_RATE
