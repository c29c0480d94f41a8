"""How good the audio of an utterance is: estimated SNR, clipping, telephone or wideband band, speech ratio and
duration, measured before any label is given, so a label from bad audio can be declined for a stated reason.

- **SNR** compares the mean power of the loudest half of the 20 ms frames (speech plus noise) with that of the
  quietest 15 % (the noise floor: the segmenter's pre-roll and hangover, the pauses), after subtracting the
  floor from the first. Capped at :data:`SNR_CAP_DB`, which also stands for digital silence between words.
- **Band** is ``narrowband`` when the spectrum above 4 kHz holds less than :data:`NARROWBAND_BELOW_DB` of the
  power in 300-3400 Hz: G.711 calls carry nothing above 4 kHz, while wideband speech, even a quiet vowel,
  keeps fricative and breath energy there.
- **Speech ratio** is the voiced share of the utterance: Praat's voiced frames within sounding intervals, from
  the cues, over the duration. ``speech_gate`` marks audio the daemon's tone / music gate refuses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from emoscribe.cues.model import Cues
from emoscribe.daemon import speech_gate
from emoscribe.daemon.frames import SAMPLE_RATE

FRAME = 320
"""20 ms frames for the level statistics."""
SNR_CAP_DB = 60.0
LOUD_SHARE, QUIET_SHARE = 0.5, 0.15
NARROWBAND_BELOW_DB = -40.0
SPECTRUM_WINDOW = 512
SPEECH_BAND_HZ, HIGH_BAND_HZ = (300.0, 3400.0), (4300.0, 7800.0)


@dataclass(frozen=True, slots=True)
class Quality:
    """The ``quality`` field of an utterance; ``speech`` is the tone / music gate's verdict and
    ``non_speech`` its reason (``steady_tones``, ``flat_envelope``, ``silence``) when it refuses."""

    snr_db: float
    clipped_fraction: float
    band: str | None
    speech_ratio: float
    duration_s: float
    speech: bool = True
    non_speech: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def assess(samples: np.ndarray, cues: Cues) -> Quality:
    """Quality of one closed utterance (16 kHz float PCM) whose final ``cues`` are already known."""
    samples = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    duration = samples.size / SAMPLE_RATE
    verdict = speech_gate.check(samples)
    voiced = (cues.voiced_fraction or 0.0) * (cues.phonation_time_s or 0.0)
    return Quality(
        snr_db=estimate_snr_db(samples),
        clipped_fraction=float(cues.clipped_fraction),
        band=band_of(samples),
        speech_ratio=min(voiced / duration, 1.0) if duration > 0 else 0.0,
        duration_s=duration,
        speech=verdict.speech,
        non_speech=verdict.reason,
    )


def estimate_snr_db(samples: np.ndarray) -> float:
    """Loud frames' power over the quiet frames' floor, in dB; :data:`SNR_CAP_DB` for a floor of silence."""
    frames = samples[: samples.size // FRAME * FRAME].reshape(-1, FRAME)
    if frames.shape[0] < 4:
        return 0.0
    power = np.sort(np.mean(frames * frames, axis=1))
    quiet = power[: max(1, int(QUIET_SHARE * power.size))].mean()
    loud = power[int((1.0 - LOUD_SHARE) * power.size) :].mean()
    if loud <= 0.0:
        return 0.0
    if quiet <= loud * 10.0 ** (-SNR_CAP_DB / 10.0):
        return SNR_CAP_DB
    return float(np.clip(10.0 * np.log10(max(loud - quiet, 1e-30) / quiet), -SNR_CAP_DB, SNR_CAP_DB))


def band_of(samples: np.ndarray) -> str | None:
    """``narrowband`` (telephone) or ``wideband``, from the averaged power spectrum of the utterance; ``None``
    for audio too short or too silent to tell."""
    if samples.size < SPECTRUM_WINDOW:
        return None
    usable = samples[: samples.size // SPECTRUM_WINDOW * SPECTRUM_WINDOW].reshape(-1, SPECTRUM_WINDOW)
    spectrum = np.mean(np.abs(np.fft.rfft(usable * np.hanning(SPECTRUM_WINDOW), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(SPECTRUM_WINDOW, 1.0 / SAMPLE_RATE)

    def power(band: tuple[float, float]) -> float:
        return float(spectrum[(freqs >= band[0]) & (freqs <= band[1])].sum())

    speech = power(SPEECH_BAND_HZ)
    if speech <= 0.0:
        return None
    return (
        "narrowband" if 10.0 * np.log10(power(HIGH_BAND_HZ) / speech + 1e-30) < NARROWBAND_BELOW_DB else "wideband"
    )
