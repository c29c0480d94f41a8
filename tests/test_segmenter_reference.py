"""The segmenter cuts the same utterances, sample for sample, as the reference recorded before its rewrite.

``data/segmenter_reference.json`` holds, for a fixed signal (the demo sentences with gaps of several lengths,
tones, music on hold and a short burst, in faint noise) and three configurations, every closed or dropped
utterance: its sample span, reason, decision time and a hash of its samples. It was written by running this
file as a script (``python tests/test_segmenter_reference.py``) at commit 510483d, where the segmenter ran the
VAD one Python call per frame and handed out the open utterance's audio as events (the reference keeps only
what both versions have); the current one must give exactly the same events whatever the framing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import RATE, SILERO_AVAILABLE
from signals import NON_SPEECH

from emoscribe.audio import load_audio
from emoscribe.daemon.frames import Frame
from emoscribe.daemon.segmenter import Segmenter, SegmenterConfig, SpeechStarted, UtteranceEnded
from emoscribe.demo import demo_clips

REFERENCE = Path(__file__).with_name("data") / "segmenter_reference.json"
CONFIGS = {
    "webrtc": SegmenterConfig(),
    "webrtc_split_3s": SegmenterConfig(max_utterance_s=3.0, hangover_ms=300.0, tail_ms=50.0),
    "silero": SegmenterConfig(vad="silero"),
}
FRAMINGS = {"packets": [320], "odd": [7919, 160, 1]}


def reference_signal() -> np.ndarray:
    """About 50 s: the demo sentences with 0.3-2 s gaps, then non-speech and a 120 ms burst, in faint noise."""
    gaps = [1.0, 0.3, 0.8, 2.0, 0.5, 1.5]
    parts = []
    for gap, clip in zip(gaps, demo_clips(), strict=True):
        parts += [np.zeros(round(gap * RATE)), load_audio(clip)[0]]
    burst = 0.3 * np.sin(2 * np.pi * 180 * np.arange(round(0.12 * RATE)) / RATE) * np.hanning(round(0.12 * RATE))
    for kind in ("dtmf", "music_on_hold", "ringback"):
        parts += [np.zeros(RATE), NON_SPEECH[kind]()[: 3 * RATE]]
    parts += [np.zeros(RATE), burst, np.zeros(RATE)]
    signal = np.concatenate(parts)
    return (signal + np.random.default_rng(7).normal(0.0, 1e-4, signal.size)).astype(np.float32)


def events_of(config: SegmenterConfig, chunks: list[int]) -> list[list]:
    """Every utterance opened, closed or dropped, as plain values."""
    segmenter = Segmenter("ref", config)
    signal = reference_signal()
    sizes = iter(np.resize(chunks, signal.size))
    events, at = [], 0
    while at < signal.size:
        size = int(next(sizes))
        events += segmenter.push(Frame("ref", at / RATE, signal[at : at + size]))
        at += size
    events += segmenter.flush()
    found = []
    for event in events:
        index = [round(t * RATE) for t in (event.start, getattr(event, "end", event.start))]
        entry = [type(event).__name__, *index]
        if not isinstance(event, SpeechStarted):
            entry += [event.reason, round(event.detected_at * RATE), getattr(event, "detail", None)]
        if isinstance(event, UtteranceEnded):
            entry.append(hashlib.sha256(event.samples.astype("<f4").tobytes()).hexdigest()[:16])
        found.append(entry)
    return found


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", CONFIGS)
def test_same_utterances_as_the_reference(name: str, framing: str) -> None:
    if name == "silero" and not SILERO_AVAILABLE:
        pytest.skip("silero-vad not installed (pip install --no-deps silero-vad; .ci/run does)")
    expected = json.loads(REFERENCE.read_text())[name]
    assert any(e[0] == "UtteranceEnded" for e in expected)
    assert events_of(CONFIGS[name], FRAMINGS[framing]) == expected


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    document = {name: events_of(config, FRAMINGS["packets"]) for name, config in CONFIGS.items()}
    REFERENCE.write_text(json.dumps(document, indent=1) + "\n")
    print({name: len(events) for name, events in document.items()})
