"""Cues on the real corpora agree with what is known about them (skipped where EMOSCRIBE_DATA is absent)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np

from emoscribe.corpus import Clip
from emoscribe.cues.batch import files_cues
from emoscribe.cues.binning import QuantileBinner


def _ravdess(corpus: list[Clip], **match: str) -> list[Clip]:
    return [c for c in corpus if c.corpus == "ravdess" and all(getattr(c, k) == v for k, v in match.items())]


def test_male_ravdess_actors_have_lower_f0_than_female(corpus: list[Clip]) -> None:
    clips = _ravdess(corpus, emotion="neutral")
    cues = files_cues([c.path for c in clips])
    by_actor: dict[tuple[str, str], list[float]] = defaultdict(list)
    for clip, cue in zip(clips, cues, strict=True):
        if cue.f0_mean_hz is not None:
            by_actor[(clip.speaker, clip.gender)].append(cue.f0_mean_hz)
    actor_means = {key: float(np.mean(values)) for key, values in by_actor.items()}
    male = [m for (_, sex), m in actor_means.items() if sex == "male"]
    female = [m for (_, sex), m in actor_means.items() if sex == "female"]
    assert len(male) == len(female) == 10
    assert np.mean(male) + 50.0 < np.mean(female)
    assert max(male) < np.median(female), "even the highest male actor is below the typical female actor"


def test_strong_angry_clips_louder_than_neutral_of_the_same_actor(corpus: list[Clip]) -> None:
    angry = _ravdess(corpus, emotion="angry", intensity="strong")
    neutral = _ravdess(corpus, emotion="neutral")
    cues = files_cues([c.path for c in angry + neutral])
    level: dict[tuple[str, str], list[float]] = defaultdict(list)
    for clip, cue in zip(angry + neutral, cues, strict=True):
        level[(clip.speaker, clip.emotion)].append(cue.intensity_mean_db)
    differences = [
        np.mean(level[(speaker, "angry")]) - np.mean(level[(speaker, "neutral")])
        for speaker in sorted({c.speaker for c in angry})
    ]
    assert len(differences) == 20
    assert np.mean(differences) > 6.0
    assert sum(d > 0 for d in differences) >= 18


def test_quantile_bins_fitted_on_the_corpus_are_balanced(corpus: list[Clip]) -> None:
    clips = random.Random(7).sample(corpus, 400)
    fit_clips = clips[:300]
    cues = files_cues([c.path for c in clips])
    binner = QuantileBinner.fit(cues[:300], n_bins=2, sexes=[c.gender for c in fit_clips])
    for name, subset, low, high in (
        ("fitted", cues[:300], 0.4, 0.6),
        ("held out", cues[300:], 0.3, 0.7),
    ):
        counts: dict[str, Counter] = defaultdict(Counter)
        for cue in subset:
            for family, token in binner.tokens(cue).items():
                if token.level is not None:
                    counts[family][token.level] += 1
        for family, counter in counts.items():
            share = counter["high"] / (counter["high"] + counter["low"])
            assert low <= share <= high, f"{name} {family}: {dict(counter)}"
