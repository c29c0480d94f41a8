"""Arousal and valence from the bundle to the message: engine output, speaker-normalised output, the emotion
fields, the caption and the schema; a bundle without them leaves them out."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from fake_bundle import LABELS, make_fake_bundle

from emoscribe.bundle import load_bundle
from emoscribe.cues.model import Cues
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.speaker_reference import SpeakerNormaliser
from emoscribe.messages import Utterance, json_schema

CUES = Cues(duration_s=2.0, f0_median_hz=230.0, intensity_mean_db=75.0)


@pytest.fixture(scope="module")
def affect_bundle(tmp_path_factory):
    return load_bundle(make_fake_bundle(tmp_path_factory.mktemp("affect"), speaker=True, affect=True))


def test_both_towers_give_arousal_and_valence(affect_bundle) -> None:
    assert affect_bundle.has_affect
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, scale, 8_000).astype(np.float32) for scale in (0.05, 0.4)]
    output = OnnxEngine(affect_bundle, "cpu").infer(clips)
    assert output.affect is not None and output.affect.shape == (2, 4)
    assert np.all(np.abs(output.affect[:, :2]) <= 1) and np.all(output.affect[:, 2:] > 0)
    assert not np.allclose(output.affect[0], output.affect[1]), "louder audio moves them"
    *_, judged = SpeakerNormaliser(affect_bundle).judge(["a", "a"], output.layer_stats)
    assert judged is not None and judged.shape == (2, 4)


def test_older_bundles_have_no_affect(tmp_path) -> None:
    bundle = load_bundle(make_fake_bundle(tmp_path / "plain"))
    assert not bundle.has_affect
    assert OnnxEngine(bundle, "cpu").infer([np.zeros(8_000, np.float32)]).affect is None
    describer = Describer(bundle, min_confidence=0.0)
    out = describer.describe(CUES, np.ones(16, np.float32) / 4, np.zeros(len(LABELS), np.float32))
    assert "arousal" not in out["emotion"] and "valence" not in out["emotion"]
    assert "arousal" not in out["caption"]


def test_the_message_carries_them_and_the_caption_names_them(affect_bundle) -> None:
    describer = Describer(affect_bundle, min_confidence=0.0)
    logits = np.zeros(len(LABELS), np.float32)
    logits[LABELS.index("angry")] = 5.0
    affect = np.array([-0.7, 0.8, 0.2, 1.4], np.float32)
    out = describer.describe(CUES, np.ones(16, np.float32) / 4, logits, affect=affect)
    emotion = out["emotion"]
    assert emotion["valence"] == pytest.approx(-0.7) and emotion["arousal"] == pytest.approx(0.8)
    assert emotion["valence_confidence"] == pytest.approx(0.8) and emotion["arousal_confidence"] == 0.0
    assert out["caption"].endswith("sounding angry (high arousal, negative valence)."), out["caption"]
    message = Utterance(stream="s", start=0.0, end=2.0, cues=CUES.to_dict(), **out).stamped(seq=1, wall_time=1.0)
    jsonschema.validate(message.to_payload(), json_schema())
    withheld = describer.describe(CUES, None, None, withheld="overload", affect=None)
    assert "arousal" not in withheld["emotion"]
