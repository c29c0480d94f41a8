"""The speech gate passes real speech (corpus, espeak-ng) and refuses tones and synthetic music on hold."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import RATE
from signals import CHANNELS, NON_SPEECH, SENTENCES, espeak, tones

from emoscribe.audio import load_audio
from emoscribe.daemon.speech_gate import check


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", NON_SPEECH)
def test_refuses_tones_and_music(kind: str, channel: str) -> None:
    result = check(CHANNELS[channel](NON_SPEECH[kind]()))
    assert not result.speech, result
    assert result.reason in ("steady_tones", "flat_envelope")


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("voice", SENTENCES)
def test_passes_espeak_speech(voice: str, channel: str) -> None:
    result = check(CHANNELS[channel](espeak(SENTENCES[voice], voice)))
    assert result.speech, result


def test_passes_corpus_speech(corpus) -> None:
    sample = random.Random(0).sample(corpus, 200)
    refused = [(clip.path.name, r.scores) for clip in sample if not (r := check(load_audio(clip.path)[0])).speech]
    assert len(refused) <= 2, refused


def test_silence_and_short_input() -> None:
    assert check(np.zeros(RATE)).reason == "silence"
    assert check(np.full(RATE, np.nan)).reason == "silence"
    short = check(tones((440.0,), 0.05))
    assert short.speech and short.reason is None
