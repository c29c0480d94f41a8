"""The utterance-level cue record shared by extraction, binning, prompts, the daemon and training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from emoscribe.mappings import refuse_unknown_keys


@dataclass(frozen=True, slots=True)
class Cues:
    """Acoustic cues of one utterance (or of the utterance so far, for rolling cues).

    Every value that cannot be defined for the input (no voiced frames, too short, digital silence) is ``None``;
    no field ever carries a placeholder number. Spans and rates are measured over the *speech span*, from the
    first to the last sounding frame, so that silence the segmenter or a corpus left around the speech does not
    change them.
    """

    duration_s: float
    speech_span_s: float | None = None
    phonation_time_s: float | None = None

    f0_mean_hz: float | None = None
    f0_median_hz: float | None = None
    f0_sd_hz: float | None = None
    f0_p5_hz: float | None = None
    f0_p95_hz: float | None = None
    f0_range_hz: float | None = None
    f0_mean_st: float | None = None
    f0_median_st: float | None = None
    f0_sd_st: float | None = None
    f0_range_st: float | None = None

    intensity_mean_db: float | None = None
    intensity_sd_db: float | None = None
    intensity_range_db: float | None = None

    syllable_count: int | None = None
    speech_rate: float | None = None
    articulation_rate: float | None = None
    pause_count: int | None = None
    pause_ratio: float | None = None
    voiced_fraction: float | None = None

    jitter_local: float | None = None
    shimmer_local: float | None = None
    hnr_db: float | None = None

    alpha_ratio_db: float | None = None
    hammarberg_db: float | None = None
    slope_0_500_db_per_khz: float | None = None
    slope_500_1500_db_per_khz: float | None = None

    f1_mean_hz: float | None = None
    f2_mean_hz: float | None = None
    f3_mean_hz: float | None = None

    clipped_fraction: float = 0.0
    dc_offset: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping (``None`` stays ``None``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cues:
        """Inverse of :meth:`to_dict`; unknown keys are refused so that a typo never passes silently."""
        refuse_unknown_keys(cls, data, "cue field(s)")
        return cls(**data)

    def get(self, name: str) -> float | None:
        """Value of the cue called ``name``; raises ``KeyError`` for a name that is not a cue."""
        if name not in CUE_NAMES:
            raise KeyError(f"{name!r} is not a cue; known cues: {', '.join(CUE_NAMES)}")
        value = getattr(self, name)
        return None if value is None else float(value)


CUE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Cues))
