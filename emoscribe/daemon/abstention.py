"""Declining to label, for a stated reason: the emotion's label is then null and the cues still go out.

Reasons about the audio are decided before the engine runs, so bad audio costs no inference and neither moves
the caller's cue baseline nor the speaker reference; reasons about the label come after it:

===================  =======================================================================================
``non_speech``       the tone / music gate refuses it, or under ``min_speech_ratio`` of it is voiced speech
``too_short``        a speech span under ``min_speech_s``
``clipped``          more than ``max_clipped_fraction`` of the samples at full scale
``low_snr``          an estimated SNR under ``min_snr_db``
``low_confidence``   the winning posterior under ``[describe] min_confidence``
``contradiction``    the cues contradict the label (grounding under ``[grounding] contradiction_below``),
                     with ``on_contradiction`` (off by default)
``overload``         the engine queue was full (counted in ``emoscribe_drops_total``)
``engine_error``     the engine failed on the batch (counted in ``emoscribe_errors_total``)
===================  =======================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from emoscribe.cues.model import Cues
from emoscribe.daemon.quality import Quality

AUDIO_REASONS = ("non_speech", "too_short", "clipped", "low_snr")
LABEL_REASONS = ("low_confidence", "contradiction")
ENGINE_REASONS = ("overload", "engine_error")
REASONS = (*AUDIO_REASONS, *LABEL_REASONS, *ENGINE_REASONS)


@dataclass(frozen=True, slots=True)
class AbstainSettings:
    """The ``[abstain]`` section; ``enabled = false`` labels whatever the audio (the label reasons still apply
    through ``[describe] min_confidence`` and ``on_contradiction``)."""

    enabled: bool = True
    min_speech_s: float = 0.5
    min_snr_db: float = 10.0
    """Estimated SNR; white noise at a true 5 dB reads about 8.5 dB, and costs 21 points of accuracy."""
    max_clipped_fraction: float = 0.01
    min_speech_ratio: float = 0.1
    on_contradiction: bool = False
    """Withhold labels the cues contradict. Off: on held-out speakers it abstains worse than confidence alone
    does at the same coverage (benchmarks/RESULTS.md), so contradiction is flagged, not acted on, by default."""

    def __post_init__(self) -> None:
        if self.min_speech_s < 0 or not 0 <= self.max_clipped_fraction <= 1 or not 0 <= self.min_speech_ratio <= 1:
            raise ValueError("min_speech_s must be >= 0 and max_clipped_fraction, min_speech_ratio within [0, 1]")


def audio_reason(quality: Quality | None, cues: Cues, settings: AbstainSettings) -> str | None:
    """Why the audio itself is not fit to label, the most basic reason first; ``None`` when it is (or when
    its quality was not measured)."""
    if not settings.enabled or quality is None:
        return None
    if not quality.speech or quality.speech_ratio < settings.min_speech_ratio:
        return "non_speech"
    if (cues.speech_span_s or 0.0) < settings.min_speech_s:
        return "too_short"
    if quality.clipped_fraction > settings.max_clipped_fraction:
        return "clipped"
    if quality.snr_db < settings.min_snr_db:
        return "low_snr"
    return None


def label_reason(
    confidence: float, min_confidence: float, contradiction: bool, settings: AbstainSettings
) -> str | None:
    """Why a label the engine gave is withheld; ``None`` to publish it."""
    if confidence < min_confidence:
        return "low_confidence"
    if contradiction and settings.on_contradiction:
        return "contradiction"
    return None
