"""Signals of known kind for the segmenter and gate tests: telephone tones, music on hold, espeak speech."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import RATE

DTMF_HZ = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336), "6": (770, 1477),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "*": (941, 1209), "0": (941, 1336), "#": (941, 1477),
}  # fmt: skip


def tones(freqs: tuple[float, ...], seconds: float, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(amplitude * np.sin(2 * np.pi * f * t) for f in freqs)


def ringback(cycles: int = 2) -> np.ndarray:
    """North American ringback: 440 + 480 Hz, 2 s on, 4 s off."""
    return np.concatenate([tones((440, 480), 2.0), np.zeros(4 * RATE)] * cycles)


def dtmf(digits: str = "0123456789*#", on: float = 0.1, off: float = 0.1) -> np.ndarray:
    return np.concatenate(
        [np.concatenate([tones(DTMF_HZ[d], on, 0.2), np.zeros(int(off * RATE))]) for d in digits]
    )


def music_on_hold(seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """Triads of harmonic tones (6 partials, 1/h), a new chord every 0.5-1 s with a plucked envelope."""
    rng = np.random.default_rng(seed)
    shapes = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (9, 12, 16), (2, 5, 9))
    chords, total = [], 0
    while total < seconds * RATE:
        t = np.arange(int(rng.uniform(0.5, 1.0) * RATE)) / RATE
        root = rng.choice([196.0, 220.0, 261.63])
        shape = shapes[rng.integers(len(shapes))]
        partials = sum(np.sin(2 * np.pi * root * 2 ** (s / 12) * h * t) / h for s in shape for h in range(1, 7))
        chords.append(partials * np.minimum(1.0, t / 0.02) * np.exp(-1.5 * t))
        total += t.size
    signal = np.concatenate(chords)[: int(seconds * RATE)]
    return 0.3 * signal / np.abs(signal).max()


def with_noise(x: np.ndarray, snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    noise_power = np.mean(x**2) / 10 ** (snr_db / 10)
    return x + np.random.default_rng(seed).normal(0.0, np.sqrt(noise_power), x.size)


def narrowband(x: np.ndarray) -> np.ndarray:
    """Through an 8 kHz channel and back (telephone band-limiting)."""
    return soxr.resample(soxr.resample(x, RATE, 8000), 8000, RATE)


NON_SPEECH = {
    "ringback": lambda: np.concatenate([np.zeros(RATE // 4), ringback(1)[: 2 * RATE], np.zeros(RATE // 10)]),
    "dtmf": dtmf,
    "music_on_hold": music_on_hold,
}
CHANNELS = {
    "clean": lambda x: x,
    "noise_20db": with_noise,
    "8khz": narrowband,
    "noise_8khz": lambda x: narrowband(with_noise(x)),
}

SENTENCES = {
    "en-us": "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
    "en-gb": "Hello, please hold the line while I transfer your call to the next available agent.",
    "de": "Guten Morgen, wie geht es Ihnen heute?",
}


def espeak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """Speech synthesised by espeak-ng, at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not on the PATH")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float64")
    return soxr.resample(samples, rate, RATE)
