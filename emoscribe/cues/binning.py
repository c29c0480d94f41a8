"""Cues into level tokens for the four acoustic prompt families of Dhamyal et al. 2023 (arXiv 2310.02298).

Three binners share one interface, so training and the daemon can swap how "high pitch" is decided:

* :class:`LiteratureBinner`: fixed thresholds from published norms; needs no data, assumes calibrated input.
* :class:`QuantileBinner`: edges fitted on a corpus, so each level is equally common there.
* :class:`SpeakerRelativeBinner`: levels relative to the speaker's own running baseline.

A value exactly on an edge falls in the upper bin. An undefined cue gives a token with ``level=None``; nothing
is ever guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.edges import (
    check_edges,
    defined,
    level_of,
    quantile_edges,
    read_edges_file,
    read_packaged_edges,
    write_edges_file,
)
from emoscribe.cues.model import Cues
from emoscribe.mappings import refuse_unknown_keys

FAMILIES: tuple[str, ...] = ("pitch", "intensity", "speech_rate", "articulation_rate")
SEXES: tuple[str, ...] = ("male", "female")

ABSOLUTE_CUES: dict[str, str] = {
    "pitch": "f0_median_hz",
    "intensity": "intensity_mean_db",
    "speech_rate": "speech_rate",
    "articulation_rate": "articulation_rate",
}
RELATIVE_CUES: dict[str, str] = ABSOLUTE_CUES | {"pitch": "f0_median_st"}
"""Semitones for relative pitch: a z-score on a perceptual scale means the same at any register."""

USUAL_F0 = "f0_median_hz"
"""The baseline cue whose mean, the speaker's usual F0, tells the speaker's sex once known."""

USUAL_F0_UTTERANCES = 2
"""Earlier utterances with a defined F0 from which the usual F0 decides the sex: from two on, their mean
is steadier than the one utterance being judged."""


@dataclass(frozen=True, slots=True)
class Token:
    """One family's level; ``relative`` tokens mean lower / usual / higher than usual for this speaker."""

    family: str
    level: str | None
    sex: str | None
    cue: str
    value: float | None
    relative: bool = False


@dataclass(frozen=True, slots=True)
class BinContext:
    """What is known about the speaker besides the cues; ``sex=None`` means not given (it may be inferred)."""

    sex: str | None = None
    baseline: SpeakerBaseline | None = None

    def __post_init__(self) -> None:
        if self.sex is not None:
            _check_sex(self.sex)


class Binner(Protocol):
    def tokens(self, cues: Cues, context: BinContext | None = None) -> dict[str, Token]:
        """A token for every family in :data:`FAMILIES`, keyed by family."""
        ...


@dataclass(frozen=True, slots=True)
class SexThresholds:
    """F0 limits for inferring sex, after Traunmüller & Eriksson (1995), "The frequency range of the voice
    fundamental in the speech of male and female adults": average F0 about 120 Hz for men and 210 Hz for women.
    Between the limits the two distributions overlap too much to decide, so the sex stays unknown.
    """

    male_max_hz: float = 145.0
    female_min_hz: float = 175.0

    def __post_init__(self) -> None:
        if not (0 < self.male_max_hz < self.female_min_hz and math.isfinite(self.female_min_hz)):
            raise ValueError(f"need 0 < male_max_hz < female_min_hz, got {self.male_max_hz}, {self.female_min_hz}")


def infer_sex(cues: Cues, thresholds: SexThresholds = SexThresholds()) -> str | None:
    """``"male"``, ``"female"`` or ``None`` (unknown) from median F0; never assumes one when unsure."""
    return sex_of_f0(defined(cues.f0_median_hz), thresholds)


def sex_of_f0(f0: float | None, thresholds: SexThresholds = SexThresholds()) -> str | None:
    """``"male"``, ``"female"`` or ``None`` for a median F0 in hertz (``None``: unknown F0)."""
    if f0 is None:
        return None
    if f0 <= thresholds.male_max_hz:
        return "male"
    if f0 >= thresholds.female_min_hz:
        return "female"
    return None


@dataclass(frozen=True, slots=True)
class LiteratureThresholds:
    """Fixed thresholds from published speech norms.

    * Pitch (``f0_median_hz``): split at the sex's average F0 from Traunmüller & Eriksson (1995), 120 Hz for
      men and 210 Hz for women; 160 Hz, between the two, when the sex is unknown.
    * Intensity (``intensity_mean_db``): 65 dB, the upper end of conversational speech level, about 60-65 dB
      SPL at 1 m (Pearsons, Bennett & Fidell 1977; ANSI S3.5). Praat's dB takes full scale as about 94 dB,
      i.e. a 2e-5 Pa reference, which holds only for calibrated recordings: on ordinary recordings absolute dB
      follows the recording gain, so prefer :class:`QuantileBinner` or :class:`SpeakerRelativeBinner` there.
    * Speech rate (syllables per second including pauses) 4.0 and articulation rate (excluding pauses) 4.5:
      conversational and read norms lie around 4-5 syllables/s, articulation rates about 4.5-5.5 (Jacewicz
      et al. 2009). Syllable-nuclei detection undercounts slightly, so measured rates run a little low.
    * ``sex_male_max_hz`` / ``sex_female_min_hz``: limits for :func:`infer_sex`.
    """

    pitch_male_split_hz: float = 120.0
    pitch_female_split_hz: float = 210.0
    pitch_split_hz: float = 160.0
    intensity_split_db: float = 65.0
    speech_rate_split: float = 4.0
    articulation_rate_split: float = 4.5
    sex_male_max_hz: float = 145.0
    sex_female_min_hz: float = 175.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or (field.name != "intensity_split_db" and value <= 0):
                raise ValueError(f"threshold {field.name} must be a finite positive number, got {value!r}")
        SexThresholds(self.sex_male_max_hz, self.sex_female_min_hz)  # validates the pair

    @property
    def sex_thresholds(self) -> SexThresholds:
        return SexThresholds(self.sex_male_max_hz, self.sex_female_min_hz)

    @classmethod
    def from_mapping(cls, data: Mapping[str, float]) -> LiteratureThresholds:
        """From a config mapping; unknown keys are refused so that a typo never leaves a default in place."""
        refuse_unknown_keys(cls, data, "threshold(s)")
        return cls(**{key: float(value) for key, value in data.items()})


class LiteratureBinner:
    """Two levels per family at the thresholds of :class:`LiteratureThresholds`.

    Pitch uses the sex-specific split when the sex is known (given in the context, else inferred from F0 by
    :func:`infer_sex`), giving four pitch tokens (low/high x male/female); otherwise, or always with
    ``sex_specific_pitch=False``, the sex-independent split.
    """

    def __init__(
        self,
        thresholds: LiteratureThresholds = LiteratureThresholds(),
        sex_specific_pitch: bool = True,
    ) -> None:
        self.thresholds = thresholds
        self.sex_specific_pitch = sex_specific_pitch

    def tokens(self, cues: Cues, context: BinContext | None = None) -> dict[str, Token]:
        t = self.thresholds
        sex = _resolve_sex(cues, context, t.sex_thresholds) if self.sex_specific_pitch else None
        pitch_split = {None: t.pitch_split_hz, "male": t.pitch_male_split_hz, "female": t.pitch_female_split_hz}
        edges = {
            "pitch": (pitch_split[sex],),
            "intensity": (t.intensity_split_db,),
            "speech_rate": (t.speech_rate_split,),
            "articulation_rate": (t.articulation_rate_split,),
        }
        return {
            family: _token(family, cues, edges[family], sex if family == "pitch" else None) for family in FAMILIES
        }


class QuantileBinner:
    """Edges at corpus quantiles, so that each level is about equally common in the fitting corpus.

    Pitch (``f0_median_hz``) may have edges per sex besides the pooled ones; a clip whose sex is known (given,
    else inferred by :func:`infer_sex`) and has edges uses them, anything else the pooled edges.
    """

    KIND = "emoscribe.quantile_binner"

    def __init__(
        self,
        edges: Mapping[str, Sequence[float]],
        pitch_by_sex: Mapping[str, Sequence[float]] | None = None,
        sex_thresholds: SexThresholds = SexThresholds(),
    ) -> None:
        if set(edges) != set(FAMILIES):
            raise ValueError(f"edges must have exactly the families {', '.join(FAMILIES)}, got {sorted(edges)}")
        self.n_bins = len(edges["pitch"]) + 1
        self.edges = {family: check_edges(edges[family], self.n_bins, family) for family in FAMILIES}
        pitch_by_sex = pitch_by_sex or {}
        unknown = sorted(set(pitch_by_sex) - set(SEXES))
        if unknown:
            raise ValueError(f"pitch edges given for unknown sex(es): {', '.join(unknown)}")
        self.pitch_by_sex = {
            sex: check_edges(values, self.n_bins, f"pitch ({sex})") for sex, values in pitch_by_sex.items()
        }
        self.sex_thresholds = sex_thresholds

    @classmethod
    def fit(
        cls,
        cues: Sequence[Cues],
        n_bins: int = 2,
        sexes: Sequence[str | None] | None = None,
        sex_thresholds: SexThresholds = SexThresholds(),
    ) -> QuantileBinner:
        """Fit edges on a corpus; ``sexes`` (one per clip, ``None`` = unknown) adds per-sex pitch edges."""
        edges = {
            family: quantile_edges([c.get(cue) for c in cues], n_bins, family)
            for family, cue in ABSOLUTE_CUES.items()
        }
        pitch_by_sex = {}
        if sexes is not None:
            if len(sexes) != len(cues):
                raise ValueError(f"got {len(sexes)} sexes for {len(cues)} clips")
            for sex in sorted({s for s in sexes if s is not None}):
                _check_sex(sex)
                group = [c.f0_median_hz for c, s in zip(cues, sexes, strict=True) if s == sex]
                pitch_by_sex[sex] = quantile_edges(group, n_bins, f"pitch ({sex})")
        return cls(edges, pitch_by_sex, sex_thresholds)

    def tokens(self, cues: Cues, context: BinContext | None = None) -> dict[str, Token]:
        sex = _resolve_sex(cues, context, self.sex_thresholds)
        if sex not in self.pitch_by_sex:
            sex = None
        tokens = {family: _token(family, cues, self.edges[family]) for family in FAMILIES}
        if sex is not None:
            tokens["pitch"] = _token("pitch", cues, self.pitch_by_sex[sex], sex)
        return tokens

    @classmethod
    def default(cls) -> QuantileBinner:
        """The edges shipped with the package (``data/bins.json``, fitted on the training corpus)."""
        return read_packaged_edges("bins.json", cls.KIND, cls.from_document)

    def save(self, path: str | Path) -> None:
        write_edges_file(path, self.KIND, self.n_bins, {"edges": self.edges, "pitch_by_sex": self.pitch_by_sex})

    @classmethod
    def load(
        cls,
        path: str | Path,
        sex_thresholds: SexThresholds = SexThresholds(),
    ) -> QuantileBinner:
        return read_edges_file(path, cls.KIND, lambda doc: cls.from_document(doc, sex_thresholds))

    @classmethod
    def from_document(
        cls,
        document: dict[str, Any],
        sex_thresholds: SexThresholds = SexThresholds(),
    ) -> QuantileBinner:
        return cls(document["edges"], document["pitch_by_sex"], sex_thresholds)


class SpeakerRelativeBinner:
    """Levels from the speaker's running baseline: z <= -threshold is low, z >= threshold high, else mid.

    Tokens are marked ``relative``: low/mid/high read "lower than usual / usual / higher than usual". Without
    a baseline in the context, or before it is warm, every level is ``None``.
    """

    def __init__(self, z_threshold: float = 0.5) -> None:
        if not (math.isfinite(z_threshold) and z_threshold > 0):
            raise ValueError(f"z_threshold must be a positive number, got {z_threshold!r}")
        self.z_threshold = z_threshold

    def tokens(self, cues: Cues, context: BinContext | None = None) -> dict[str, Token]:
        baseline = context.baseline if context is not None else None
        tokens = {}
        for family, cue in RELATIVE_CUES.items():
            z = baseline.zscore(cues, cue) if baseline is not None else None
            if z is None:
                level = None
            elif z <= -self.z_threshold:
                level = "low"
            elif z >= self.z_threshold:
                level = "high"
            else:
                level = "mid"
            tokens[family] = Token(family, level, None, cue, cues.get(cue), relative=True)
        return tokens


def _check_sex(sex: str) -> None:
    if sex not in SEXES:
        raise ValueError(f"sex must be one of {', '.join(SEXES)} (or None for unknown), got {sex!r}")


def _resolve_sex(cues: Cues, context: BinContext | None, thresholds: SexThresholds) -> str | None:
    """The given sex, else the one of the speaker's usual F0 once the baseline knows it, else this utterance's.

    The usual F0 comes first because one utterance misleads: an angry man's pitch rises into the female range.
    """
    if context is not None and context.sex is not None:
        return context.sex
    baseline = context.baseline if context is not None else None
    if baseline is not None and USUAL_F0 in baseline.cues and baseline.count(USUAL_F0) >= USUAL_F0_UTTERANCES:
        return sex_of_f0(baseline.mean(USUAL_F0), thresholds)
    return infer_sex(cues, thresholds)


def _token(family: str, cues: Cues, edges: Sequence[float], sex: str | None = None) -> Token:
    cue = ABSOLUTE_CUES[family]
    value = cues.get(cue)
    return Token(family, level_of(value, edges), sex, cue, value)
