"""Grounding an emotion label in its acoustic evidence: where the utterance's cues stand against the population
and against the caller's own baseline, and how well a per-class model of those cues supports the label.

A label the model gives at low intensity, low pitch and a slow rate, yet calls "angry", is one a supervisor
should not take at its word. The cue model says so independently of the audio encoder: one Gaussian per emotion
with a pooled covariance (linear discriminant analysis) over :data:`GROUNDING_CUES`, in two spaces:

* **caller**: each cue as a z-score against the caller's running baseline (:class:`SpeakerBaseline`, as the
  daemon keeps it per stream), used once the baseline is warm for half the cues; a voice's own register and the
  recording's gain drop out;
* **population**: each cue as a z-score against the training population (of the speaker's sex, where known),
  for the first utterances of a call.

The caller space is fitted the way it runs: each training speaker's clips heard as one stream in a seeded random
order, each judged against the baseline of the ones before it. ``grounding`` is the label's posterior under the
cue model with equal class priors, over the labels both the model and the bundle know.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.edges import defined
from emoscribe.cues.model import Cues

GROUNDING_CUES: tuple[str, ...] = (
    "intensity_mean_db",
    "intensity_sd_db",
    "intensity_range_db",
    "f0_median_st",
    "f0_sd_st",
    "f0_range_st",
    "speech_rate",
    "articulation_rate",
    "pause_ratio",
    "phonation_time_s",
    "voiced_fraction",
    "hnr_db",
    "jitter_local",
    "shimmer_local",
    "alpha_ratio_db",
    "hammarberg_db",
    "slope_0_500_db_per_khz",
    "slope_500_1500_db_per_khz",
    "f1_mean_hz",
    "f2_mean_hz",
)
"""The eGeMAPS groups the cue-alignment literature ties to emotion: loudness, pitch level and movement, rate
and pauses, voice quality, spectral balance, formants. Correlated cues are fine: the pooled covariance
discounts what two of them say twice."""

KIND, VERSION = "grounding", 1
CALLER, POPULATION = "caller", "population"
SPACES = (CALLER, POPULATION)
EXPECTED_MIN_SD = 0.3
"""A label "expects" a cue to be high or low when its class mean lies at least this far from the average."""
TELLING_SD = 0.5
"""An observed cue supports or contradicts the label only when it lies at least this far from the average."""
MAX_EVIDENCE = 8
"""The strongest telling cues listed with a label."""
RIDGE = 0.1
"""Added to the pooled covariance's diagonal (in z units), so a rare cue combination never divides by zero."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One telling cue: z-scores in standard deviations (``vs_caller`` ``None`` until the caller is known),
    the label's expected z in the space judged, and whether the observation goes the expected way."""

    cue: str
    vs_population: float | None
    vs_caller: float | None
    expected: float
    supports: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "cue": self.cue,
            "vs_population": _round(self.vs_population),
            "vs_caller": _round(self.vs_caller),
            "expected": _round(self.expected),
            "supports": self.supports,
        }


@dataclass(frozen=True, slots=True)
class Grounding:
    """The cue model's judgement of one label: ``score`` in [0, 1] (``None`` for a label it does not know or
    cues too sparse to judge), the space used, the telling cues strongest first, and ``contradiction``."""

    score: float | None
    space: str | None
    evidence: tuple[Evidence, ...]
    contradiction: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": _round(self.score, 3),
            "space": self.space,
            "contradiction": self.contradiction,
            "evidence": [item.to_dict() for item in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class ClassModel:
    """Class means (``labels`` by cues) and the pooled within-class covariance of one space, and the temperature
    that calibrates its posteriors on speakers it was not fitted on."""

    labels: tuple[str, ...]
    means: np.ndarray
    covariance: np.ndarray
    temperature: float = 1.0

    def log_likelihoods(self, z: np.ndarray) -> np.ndarray | None:
        """Per class, over the cues defined in ``z`` (NaN = undefined: the Gaussian's marginal drops them),
        divided by the temperature; ``None`` with fewer than two cues defined."""
        known = np.isfinite(z)
        if known.sum() < 2:
            return None
        inverse = np.linalg.inv(self.covariance[np.ix_(known, known)])
        centred = z[known] - self.means[:, known]
        return -0.5 * np.einsum("ci,ij,cj->c", centred, inverse, centred) / self.temperature

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "means": self.means.tolist(),
            "covariance": self.covariance.tolist(),
            "temperature": self.temperature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], n_cues: int) -> ClassModel:
        means = np.asarray(data["means"], dtype=np.float64)
        covariance = np.asarray(data["covariance"], dtype=np.float64)
        if means.shape != (len(data["labels"]), n_cues) or covariance.shape != (n_cues, n_cues):
            raise ValueError(f"shapes {means.shape} and {covariance.shape} do not fit {n_cues} cues")
        if not (np.isfinite(means).all() and np.isfinite(covariance).all()):
            raise ValueError("non-finite values")
        temperature = float(data["temperature"])
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        return cls(tuple(str(label) for label in data["labels"]), means, covariance, temperature)


@dataclass(frozen=True, slots=True)
class Population:
    """Mean and spread of each cue by sex (``"all"`` for a speaker of unknown sex)."""

    means: dict[str, np.ndarray]
    sds: dict[str, np.ndarray]

    def zscores(self, cues: Cues, names: Sequence[str], sex: str | None) -> np.ndarray:
        group = sex if sex in self.means else "all"
        values = np.array([_value(cues, name) for name in names])
        return (values - self.means[group]) / self.sds[group]


class GroundingModel:
    """The per-class cue model of both spaces, with the population it standardises against."""

    def __init__(
        self,
        cues: Sequence[str],
        population: Population,
        spaces: dict[str, ClassModel],
        half_life: float,
        min_updates: int,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.cues = tuple(cues)
        self.population = population
        self.spaces = spaces
        self.half_life = half_life
        self.min_updates = min_updates
        self.provenance = provenance or {}

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spaces[POPULATION].labels

    def caller_zscores(self, cues: Cues, baseline: SpeakerBaseline | None) -> np.ndarray:
        """Each cue against the caller's baseline; NaN where the baseline is cold or the cue undefined."""
        if baseline is None:
            return np.full(len(self.cues), np.nan)
        return np.array([defined(baseline.zscore(cues, name)) for name in self.cues], dtype=np.float64)

    def judge(
        self,
        cues: Cues,
        label: str | None,
        candidates: Sequence[str],
        sex: str | None = None,
        baseline: SpeakerBaseline | None = None,
        contradiction_below: float = 0.0,
    ) -> Grounding:
        """Ground ``label`` among ``candidates`` (the bundle's labels): score, evidence, and ``contradiction``
        when the score falls below ``contradiction_below``. Score ``baseline`` *before* folding the utterance
        in, as the daemon does."""
        population = self.population.zscores(cues, self.cues, sex)
        caller = self.caller_zscores(cues, baseline)
        space = CALLER if np.isfinite(caller).sum() >= len(self.cues) // 2 else POPULATION
        z = caller if space == CALLER else population
        model = self.spaces[space]
        if label is None or label not in model.labels:
            return Grounding(None, None, (), False)
        rows = [i for i, name in enumerate(model.labels) if name in candidates or name == label]
        loglik = model.log_likelihoods(z)
        if loglik is None:
            return Grounding(None, space, (), False)
        chosen = loglik[rows]
        posterior = np.exp(chosen - chosen.max())
        score = float(posterior[[model.labels[i] for i in rows].index(label)] / posterior.sum())
        expected = model.means[model.labels.index(label)]
        evidence = []
        for index, name in enumerate(self.cues):
            observed = z[index]
            if not math.isfinite(observed) or abs(expected[index]) < EXPECTED_MIN_SD or abs(observed) < TELLING_SD:
                continue
            evidence.append(
                Evidence(
                    name,
                    defined(population[index]),
                    defined(caller[index]),
                    float(expected[index]),
                    bool(np.sign(observed) == np.sign(expected[index])),
                )
            )
        evidence.sort(key=lambda item: -abs((item.vs_caller if space == CALLER else item.vs_population) or 0.0))
        return Grounding(score, space, tuple(evidence[:MAX_EVIDENCE]), score < contradiction_below)

    # --- persistence -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "version": VERSION,
            "cues": list(self.cues),
            "half_life": self.half_life,
            "min_updates": self.min_updates,
            "population": {
                group: {"mean": self.population.means[group].tolist(), "sd": self.population.sds[group].tolist()}
                for group in self.population.means
            },
            "spaces": {name: space.to_dict() for name, space in self.spaces.items()},
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any, source: str = "grounding model") -> GroundingModel:
        """Inverse of :meth:`to_dict`; anything malformed raises ``ValueError`` naming ``source``."""
        try:
            if not isinstance(data, dict) or data.get("kind") != KIND or data.get("version") != VERSION:
                raise ValueError(f"not a {KIND} document of version {VERSION}")
            names = [str(name) for name in data["cues"]]
            unknown = [name for name in names if name not in Cues.__dataclass_fields__]
            if unknown:
                raise ValueError(f"unknown cue(s) {', '.join(unknown)}")
            groups = data["population"]
            means = {g: _vector(groups[g]["mean"], len(names)) for g in groups}
            sds = {g: _vector(groups[g]["sd"], len(names)) for g in groups}
            if "all" not in means or any((sd <= 0).any() for sd in sds.values()):
                raise ValueError("the population needs an 'all' group and positive spreads")
            spaces = {name: ClassModel.from_dict(data["spaces"][name], len(names)) for name in SPACES}
            return cls(
                names,
                Population(means, sds),
                spaces,
                float(data["half_life"]),
                int(data["min_updates"]),
                dict(data.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{source}: invalid {KIND} model: {error}") from error

    @classmethod
    def load(cls, path: str | Path) -> GroundingModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read the grounding model: {error}") from error
        return cls.from_dict(data, str(path))

    @classmethod
    def default(cls) -> GroundingModel:
        """The model shipped in the package (fitted by ``emoscribe fit-grounding``)."""
        resource = resources.files("emoscribe.cues").joinpath("data", "grounding.json")
        return cls.from_dict(json.loads(resource.read_text(encoding="utf-8")), str(resource))


@dataclass(frozen=True, slots=True)
class LabelledCues:
    """One training clip for :func:`fit_grounding`: ``stream`` is the simulated stream it was heard on (one per
    speaker and channel), ``speaker`` the person (the unit the temperature is cross-validated over)."""

    cues: Cues
    emotion: str
    stream: str
    speaker: str
    sex: str | None


def fit_grounding(
    clips: Iterable[LabelledCues],
    cues: Sequence[str] = GROUNDING_CUES,
    half_life: float = 20.0,
    min_updates: int = 3,
    provenance: dict[str, Any] | None = None,
) -> GroundingModel:
    """Fit both spaces on ``clips``, taken per stream in the order given (that order is the simulated call the
    caller baselines are built from: pass each speaker's clips shuffled), and calibrate each space's posteriors
    by leave-one-speaker-out."""
    clips = list(clips)
    if not clips:
        raise ValueError("no clips to fit the grounding model on")
    names = tuple(cues)
    values = np.array([[_value(c.cues, name) for name in names] for c in clips])
    population = _population(values, [c.sex for c in clips])
    pop_z = np.array([population.zscores(c.cues, names, c.sex) for c in clips])
    baselines: dict[str, SpeakerBaseline] = defaultdict(
        lambda: SpeakerBaseline(half_life, min_updates, sorted(set(names)))
    )
    caller_z = []
    for clip in clips:
        baseline = baselines[clip.stream]
        caller_z.append([defined(baseline.zscore(clip.cues, name)) for name in names])
        baseline.update(clip.cues)
    emotions = np.array([c.emotion for c in clips])
    speakers = np.array([c.speaker for c in clips])
    spaces = {
        POPULATION: _calibrated(pop_z, emotions, speakers),
        CALLER: _calibrated(np.array(caller_z, dtype=np.float64), emotions, speakers),
    }
    return GroundingModel(names, population, spaces, half_life, min_updates, provenance)


def _calibrated(z: np.ndarray, emotions: np.ndarray, speakers: np.ndarray) -> ClassModel:
    """The class model on every clip, with the temperature that best predicts each speaker's emotions from a
    model fitted on the other speakers (one speaker alone: no calibration)."""
    model = _class_model(z, emotions)
    held_out, truth = [], []
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        if len(set(emotions[~rows])) < len(model.labels):
            continue
        try:
            fold = _class_model(z[~rows], emotions[~rows])
        except ValueError:  # too few clips without this speaker
            continue
        for row in np.flatnonzero(rows):
            loglik = fold.log_likelihoods(z[row])
            if loglik is not None:
                held_out.append(loglik)
                truth.append(model.labels.index(emotions[row]))
    if not held_out:
        return model
    temperature = _temperature(np.array(held_out), np.array(truth))
    return ClassModel(model.labels, model.means, model.covariance, temperature)


def _temperature(loglik: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``truth`` (grid over 0.1-100, log-spaced)."""
    best, best_nll = 1.0, math.inf
    for temperature in np.logspace(-1, 2, 121):
        scaled = loglik / temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        nll = -np.mean(scaled[np.arange(truth.size), truth] - np.log(np.exp(scaled).sum(axis=1)))
        if nll < best_nll:
            best, best_nll = float(temperature), nll
    return best


def _population(values: np.ndarray, sexes: Sequence[str | None]) -> Population:
    means, sds = {}, {}
    groups = {"all": np.ones(len(sexes), dtype=bool)}
    groups |= {sex: np.array([s == sex for s in sexes]) for sex in ("female", "male") if sex in sexes}
    for group, rows in groups.items():
        means[group] = np.nanmean(values[rows], axis=0)
        sds[group] = np.maximum(np.nanstd(values[rows], axis=0, ddof=1), 1e-9)
        if not (np.isfinite(means[group]).all() and np.isfinite(sds[group]).all()):
            raise ValueError(f"a grounding cue is never defined for speakers of group {group!r}")
    return Population(means, sds)


def _class_model(z: np.ndarray, emotions: np.ndarray) -> ClassModel:
    """Class means over each cue's defined values; pooled covariance from the clips with every cue defined."""
    labels = tuple(sorted(set(emotions.tolist())))
    member = emotions
    means = np.array([np.nanmean(z[member == label], axis=0) for label in labels])
    if not np.isfinite(means).all():
        raise ValueError("some emotion has a cue that is never defined (too few clips per speaker?)")
    complete = np.isfinite(z).all(axis=1)
    centred = z[complete] - means[[labels.index(e) for e in member[complete]]]
    if centred.shape[0] <= z.shape[1]:
        raise ValueError(f"only {centred.shape[0]} clips have every grounding cue defined")
    covariance = centred.T @ centred / (centred.shape[0] - len(labels)) + RIDGE * np.eye(z.shape[1])
    return ClassModel(labels, means, covariance)


def _value(cues: Cues, name: str) -> float:
    value = cues.get(name)
    return np.nan if value is None or not math.isfinite(value) else float(value)


def _vector(values: Any, n: int) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float64)
    if vector.shape != (n,) or not np.isfinite(vector).all():
        raise ValueError(f"expected {n} finite numbers, got {values!r}")
    return vector


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
