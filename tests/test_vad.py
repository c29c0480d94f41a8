"""Both voice activity detectors judge single frames: silence is silence, speech is speech, state resets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import RATE
from signals import SENTENCES, espeak

from emoscribe.daemon import vad as vad_module
from emoscribe.daemon.vad import SileroVad, WebRtcVad, make_vad

KINDS = {"webrtc": {"aggressiveness": 2}, "silero": {}}


def decisions(detector, samples: np.ndarray) -> np.ndarray:
    size = detector.frame_samples
    frames = samples[: samples.size // size * size].astype(np.float32).reshape(-1, size)
    return np.array([detector.is_speech(frame) for frame in frames])


@pytest.mark.parametrize("kind", KINDS)
def test_speech_and_silence(kind: str) -> None:
    detector = make_vad(kind, **KINDS[kind])
    speech = espeak(SENTENCES["en-us"])
    pad = np.zeros(RATE)
    voiced = decisions(detector, np.concatenate([pad, speech, pad]))
    per_second = RATE // detector.frame_samples
    assert not voiced[: per_second - 1].any()
    assert voiced[per_second + 2 : -per_second - 2].mean() > 0.6
    assert not voiced[-per_second + 4 :].any()


@pytest.mark.parametrize("kind", KINDS)
def test_reset_repeats_decisions(kind: str) -> None:
    detector = make_vad(kind, **KINDS[kind])
    speech = espeak(SENTENCES["de"])
    first = decisions(detector, speech)
    detector.reset()
    assert np.array_equal(decisions(detector, speech), first)


def test_frame_sizes_and_bad_frames() -> None:
    assert WebRtcVad(frame_ms=10).frame_samples == 160
    assert WebRtcVad(frame_ms=30).frame_samples == 480
    silero = SileroVad()
    assert silero.frame_samples == 512
    with pytest.raises(ValueError, match="512"):
        silero.is_speech(np.zeros(480, dtype=np.float32))
    assert not silero.is_speech(np.full(512, np.nan, dtype=np.float32))
    assert not WebRtcVad().is_speech(np.full(480, np.inf, dtype=np.float32))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        WebRtcVad(frame_ms=25)
    with pytest.raises(ValueError, match="aggressiveness"):
        make_vad("webrtc", aggressiveness=5)
    with pytest.raises(ValueError, match="unknown VAD kind 'energy'"):
        make_vad("energy")
    with pytest.raises(ValueError, match="silero"):
        make_vad("silero", frame_ms=30)


def test_missing_silero_model_names_the_package(monkeypatch, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="silero-vad"):
        SileroVad(model_path=tmp_path / "nowhere.onnx")
    monkeypatch.setattr(vad_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps silero-vad"):
        SileroVad()


def test_no_torch_in_the_daemon() -> None:
    """Loading Silero must not import its package (which imports torch)."""
    code = (
        "import sys; from emoscribe.daemon import segmenter, speech_gate, vad; vad.SileroVad(); "
        "assert 'torch' not in sys.modules and 'silero_vad' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
