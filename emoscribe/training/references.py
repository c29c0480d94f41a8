"""References for training and evaluation: what the daemon would know of a speaker, or of its population.

A speaker reference is the mean and variance of the statistics of K *other* clips of the clip's speaker, read
through the same channel variant (a call does not change codec halfway). Training draws K afresh for every row
and epoch, from 0 (nothing known: the priors alone) up to the daemon's horizon, so one head learns every point
of a call. Evaluation fixes K, or draws the K clips from one emotion only: a call's earlier utterances are rarely
a balanced sample of emotions, and that is the pessimistic case.

A population reference (``reference = "population"``) is what a node's ``[population]`` moments hold after it
has heard K utterances of a deployment: in training, K clips of the row's corpus (its channel, language and
speakers), in evaluation the running moments of the held-out clips heard one by one in a seeded order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from emoscribe.daemon.speaker_reference import RunningMoments
from emoscribe.training.features import FeatureSet
from emoscribe.training.heads import Reference, SpeakerReference
from emoscribe.training.records import Record


class ReferenceSampler:
    """Draws references for rows from the other rows of their speaker among ``rows``."""

    def __init__(self, records: Sequence[Record], rows: Sequence[int]) -> None:
        self._speaker = {int(r): records[r].utterance.speaker for r in rows}
        self._label = {int(r): records[r].label for r in rows}
        groups: dict[str, list[int]] = defaultdict(list)
        for row, speaker in self._speaker.items():
            groups[speaker].append(row)
        self._groups = {speaker: np.array(members) for speaker, members in groups.items()}

    def draw(
        self,
        features: FeatureSet,
        rows: Sequence[int],
        variants: Sequence[str],
        counts: Sequence[int],
        rng: np.random.Generator,
        one_emotion: bool | Sequence[bool] = False,
    ) -> Reference:
        """References for ``rows``: ``counts[i]`` other clips of row i's speaker from variant ``variants[i]``
        (fewer where the speaker has fewer); where ``one_emotion`` (for all rows, or per row), all of one emotion
        drawn at random."""
        alike = [one_emotion] * len(rows) if isinstance(one_emotion, bool) else list(one_emotion)
        used, means, variances = _empty_reference(features, len(rows))
        for i, (row, variant, count) in enumerate(zip(rows, variants, counts, strict=True)):
            others = self._groups[self._speaker[int(row)]]
            others = others[others != row]
            if alike[i] and others.size:
                labels = np.array([self._label[o] for o in others])
                others = others[labels == rng.choice(labels)]
            count = min(int(count), others.size)
            if count == 0:
                continue
            values = features.stats[variant][rng.choice(others, size=count, replace=False)].astype(np.float32)
            means[i], variances[i], used[i] = values.mean(0), values.var(0), count
        return torch.from_numpy(used), torch.from_numpy(means), torch.from_numpy(variances)


def _empty_reference(features: FeatureSet, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, means and variances of ``n`` references that know nothing yet, to be filled row by row."""
    means = np.zeros((n, features.n_layers, 2 * features.d_audio), dtype=np.float32)
    return np.zeros(n, dtype=np.float32), means, np.zeros_like(means)


class PopulationSampler:
    """Draws population references for rows: K clips of their corpus from the row's variant, or, past
    ``SAMPLED_CLIPS``, the corpus's own moments (what a node's moments converge to) with count K."""

    SAMPLED_CLIPS = 64

    def __init__(self, records: Sequence[Record], rows: Sequence[int], features: FeatureSet) -> None:
        groups: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            groups[records[row].utterance.corpus].append(int(row))
        self._corpus = {row: records[row].utterance.corpus for row in map(int, rows)}
        self._groups = {corpus: np.array(members) for corpus, members in groups.items()}
        self._moments = {
            (corpus, variant): (values.mean(0), values.var(0))
            for corpus, members in self._groups.items()
            for variant, stats in features.stats.items()
            for values in [stats[members]]
        }

    def draw(
        self,
        features: FeatureSet,
        rows: Sequence[int],
        variants: Sequence[str],
        counts: Sequence[int],
        rng: np.random.Generator,
    ) -> Reference:
        used, means, variances = _empty_reference(features, len(rows))
        for i, (row, variant, count) in enumerate(zip(rows, variants, counts, strict=True)):
            corpus = self._corpus[int(row)]
            if count == 0:
                continue
            used[i] = count
            if count > self.SAMPLED_CLIPS:
                means[i], variances[i] = self._moments[corpus, variant]
                continue
            members = self._groups[corpus]
            values = features.stats[variant][rng.choice(members, size=min(count, members.size), replace=False)]
            means[i], variances[i] = values.mean(0), values.var(0)
        return torch.from_numpy(used), torch.from_numpy(means), torch.from_numpy(variances)


def population_counts(n: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """How much of its population a node has heard, per training row: none for a tenth (a fresh node), a few
    (1 to ``SAMPLED_CLIPS``) for three tenths, else log-uniformly up to ``horizon`` (a node in service)."""
    stage = rng.random(n)
    few = rng.integers(1, PopulationSampler.SAMPLED_CLIPS + 1, n)
    low = PopulationSampler.SAMPLED_CLIPS + 1
    many = np.exp(rng.uniform(np.log(low), np.log(max(horizon, low + 1)), n))
    return np.where(stage < 0.1, 0, np.where(stage < 0.4, few, many.astype(int)))


def streamed_references(
    features: FeatureSet,
    rows: np.ndarray,
    variant: str,
    order: np.ndarray,
    streams: np.ndarray,
    horizon: int,
) -> Reference:
    """References of ``rows`` as the daemon builds them when it hears the rows in ``order`` (a permutation of
    their positions): running moments per stream (``streams``: each position's stream id) of everything heard
    on that stream before, forgetting past ``horizon``. One stream id for all is a node's ``[population]``; a
    stream per speaker is speaker normalisation."""
    stats = features.stats[variant][rows].astype(np.float32)
    running: dict[int, RunningMoments] = {}
    counts = np.zeros(len(rows), dtype=np.float32)
    means, variances = np.zeros_like(stats), np.zeros_like(stats)
    for position in order:
        moments = running.setdefault(int(streams[position]), RunningMoments(stats.shape[1:], horizon))
        counts[position], means[position], variances[position] = moments.count, moments.mean, moments.var
        moments.update(stats[position])
    return torch.from_numpy(counts), torch.from_numpy(means), torch.from_numpy(variances)


def fit_priors(
    reference: SpeakerReference,
    features: FeatureSet,
    records: Sequence[Record],
    rows: Sequence[int],
    variants: Sequence[str],
    prior_clips: float,
    group_by: str = "speaker",
) -> None:
    """Set the priors from the training rows: the mean, and the variance within a group (a speaker, or for
    population references a corpus; per channel variant, since a call keeps its channel) averaged over the
    groups: what a new speaker's, or a new deployment's, is expected to be."""
    groups: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        utterance = records[row].utterance
        groups[utterance.speaker if group_by == "speaker" else utterance.corpus].append(int(row))
    means, variances, weights = [], [], []
    for members in groups.values():
        for variant in variants:
            values = features.stats[variant][members].astype(np.float64)
            means.append(values.mean(0))
            variances.append(values.var(0))
            weights.append(len(members) if group_by == "speaker" else 1.0)
    reference.prior_mean.copy_(torch.from_numpy(np.average(means, axis=0, weights=weights)))
    reference.prior_var.copy_(torch.from_numpy(np.average(variances, axis=0, weights=weights)))
    reference.prior_clips.fill_(prior_clips)
