"""Speaker references for training and evaluation: what the daemon would know of a speaker after K utterances.

A clip's reference is the mean and variance of the statistics of K *other* clips of its speaker, read through
the same channel variant (a call does not change codec halfway). Training draws K afresh for every row and epoch,
from 0 (nothing known: the population priors alone) up to the daemon's horizon, so one head learns every point
of a call. Evaluation fixes K, or draws the K clips from one emotion only: a call's earlier utterances are rarely
a balanced sample of emotions, and that is the pessimistic case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

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
        means = np.zeros((len(rows), features.n_layers, 2 * features.d_audio), dtype=np.float32)
        variances = np.zeros_like(means)
        used = np.zeros(len(rows), dtype=np.float32)
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


def fit_priors(
    reference: SpeakerReference,
    features: FeatureSet,
    records: Sequence[Record],
    rows: Sequence[int],
    variants: Sequence[str],
    prior_clips: float,
) -> None:
    """Set the priors from the training rows: the population mean, and the within-speaker variance (per channel
    variant, since a call keeps its channel) averaged over speakers: what a new speaker's is expected to be."""
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_speaker[records[row].utterance.speaker].append(int(row))
    means, variances, weights = [], [], []
    for members in by_speaker.values():
        for variant in variants:
            values = features.stats[variant][members].astype(np.float64)
            means.append(values.mean(0))
            variances.append(values.var(0))
            weights.append(len(members))
    reference.prior_mean.copy_(torch.from_numpy(np.average(means, axis=0, weights=weights)))
    reference.prior_var.copy_(torch.from_numpy(np.average(variances, axis=0, weights=weights)))
    reference.prior_clips.fill_(prior_clips)
