"""The leave-one-corpus-out benchmark's stream helpers: adaptation judges each clip only by what came before it,
the unbalanced mix is 70 % neutral, one-emotion streams never mix emotions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from loco import PRIOR_CLIPS, neutral_mix, one_emotion_streams, standardise, streamed

from emoscribe.datasets import Utterance


def test_streaming_judges_each_clip_by_the_clips_before_it_only() -> None:
    x = np.array([[10.0], [12.0], [14.0], [100.0]], dtype=np.float32)
    prior = (np.zeros(1, np.float32), np.ones(1, np.float32))
    out = streamed(x, np.array([0, 1, 2, 3]), prior, horizon=100)
    np.testing.assert_allclose(out[0], standardise(x[0], *prior), rtol=1e-5)
    mean = (1 * 10.0 + PRIOR_CLIPS * 0.0) / (1 + PRIOR_CLIPS)
    var = (1 * 0.0 + PRIOR_CLIPS * 1.0) / (1 + PRIOR_CLIPS)
    np.testing.assert_allclose(out[1], (12.0 - mean) / np.sqrt(var + 1e-6), rtol=1e-4)
    reordered = streamed(x, np.array([3, 0, 1, 2]), prior, horizon=100)
    assert not np.allclose(reordered[0], out[0]), "the outlier heard first moves what follows"


def test_the_unbalanced_mix_is_seventy_percent_neutral() -> None:
    labels = np.array([2] * 140 + [0] * 100 + [1] * 100 + [3] * 100)
    rows = neutral_mix(labels, neutral=2, seed=0)
    assert len(set(rows.tolist())) == len(rows)
    assert np.mean(labels[rows] == 2) == pytest.approx(0.7, abs=0.01)


def test_one_emotion_streams_keep_speaker_and_emotion_apart() -> None:
    members = [
        Utterance(Path(f"{i}.wav"), "c", f"c-{i % 2}", None, ("angry", "sad", "angry", "neutral")[i % 4])
        for i in range(16)
    ]
    streams = one_emotion_streams(members, np.arange(16), seed=0)
    assert sorted(int(r) for s in streams for r in s) == list(range(16))
    for stream in streams:
        assert len({(members[r].speaker, members[r].emotion) for r in stream}) == 1
