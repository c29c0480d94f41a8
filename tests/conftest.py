"""Shared fixtures: synthetic voices of known truth and the corpus folder (skipped where absent)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from emoscribe.corpus import Clip, data_dir, read_manifest

RATE = 16_000

# Every daemon a test starts takes a free control port unless the test names one: two daemons never collide
# on the default endpoint, whatever else runs on the machine.
os.environ.setdefault("EMOSCRIBE_CONTROL_ENDPOINT", "tcp://127.0.0.1:*")


def vowel(
    f0: float,
    seconds: float = 1.0,
    amplitude: float = 0.3,
    formants: tuple[float, ...] = (700.0, 1220.0, 2600.0),
    rate: int = RATE,
) -> np.ndarray:
    """A steady vowel: harmonics of ``f0`` falling 6 dB/octave (glottal source plus lip radiation), shaped by
    formant resonances."""
    t = np.arange(int(seconds * rate)) / rate
    harmonics = np.arange(1, int(0.45 * rate / f0) + 1) * f0
    gain = f0 / harmonics
    for formant in formants:
        bandwidth = 80.0 + 0.05 * formant
        gain = gain * formant**2 / np.sqrt((formant**2 - harmonics**2) ** 2 + (bandwidth * harmonics) ** 2)
    signal = np.sin(2 * np.pi * np.outer(t, harmonics)) @ gain
    return amplitude * signal / np.abs(signal).max()


def pulse_train(f0: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """Unit impulses every 1/f0 s (rounded to the nearest sample)."""
    x = np.zeros(int(seconds * RATE))
    x[np.round(np.arange(0, seconds, 1.0 / f0) * RATE).astype(int) % x.size] = amplitude
    return x


def syllables(count: int, f0: float = 140.0, rate_hz: float = 4.0, amplitude: float = 0.3) -> np.ndarray:
    """``count`` vowel bursts at ``rate_hz`` separated by silence, padded with 0.3 s of silence each side."""
    period = int(RATE / rate_hz)
    length = int(0.6 * period)
    burst = vowel(f0, seconds=length / RATE, amplitude=amplitude)[:length] * np.hanning(length)
    gap = np.zeros(period - length)
    pad = np.zeros(int(0.3 * RATE))
    return np.concatenate([pad, *([burst, gap] * count), pad])


@pytest.fixture(scope="session")
def corpus() -> list[Clip]:
    folder = data_dir()
    if folder is None:
        pytest.skip("corpus not available: set EMOSCRIBE_DATA to the folder holding manifest.csv")
    return read_manifest(folder)


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "emoscribe" / "demo"


SILERO_AVAILABLE = importlib.util.find_spec("silero_vad") is not None


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that run the silero VAD skip, with the reason, where its package is not installed."""
    if SILERO_AVAILABLE:
        return
    skip = pytest.mark.skip(reason="silero-vad not installed (pip install --no-deps silero-vad; .ci/run does)")
    for item in items:
        if "silero" in item.name.lower() and "missing" not in item.name.lower():
            item.add_marker(skip)
