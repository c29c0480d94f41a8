"""Voice activity detectors: one frame of 16 kHz float PCM in, speech or not out, behind one small interface.

The segmenter owns the state machine (pre-roll, hangover, lengths); a detector only judges single frames, so
backends can be swapped by name from the configuration (:func:`make_vad`).
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
import webrtcvad

from emoscribe.daemon.frames import SAMPLE_RATE


class Vad(Protocol):
    """A frame classifier with per-stream state (one instance per stream)."""

    @property
    def frame_samples(self) -> int:
        """Samples in the one frame size the detector judges."""
        ...

    def classify(self, frames: np.ndarray) -> list[bool]:
        """Judge consecutive frames of the stream, one per row of a ``(n, frame_samples)`` array, in one call:
        the segmenter hands over every frame a packet completes at once."""
        ...

    def is_speech(self, frame: np.ndarray) -> bool:
        """Judge the stream's next single frame."""
        ...

    def reset(self) -> None:
        """Forget the stream so far (a new stream may follow)."""
        ...


def _check_frames(frames: np.ndarray, size: int) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != size:
        raise ValueError(f"expected frames of {size} samples, one per row, got shape {frames.shape}")
    if math.isfinite(frames.sum()):  # one reduction: the sum of finite frames of audio stays finite
        return frames
    # NaN/inf would turn into arbitrary integers or poison the recurrent state: judge them as silence.
    return np.nan_to_num(frames, nan=0.0, posinf=0.0, neginf=0.0)


def _one_frame(frame: np.ndarray, size: int) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.float32)
    if frame.shape != (size,):
        raise ValueError(f"expected one frame of {size} samples, got shape {frame.shape}")
    return frame[None, :]


class WebRtcVad:
    """The WebRTC GMM detector (``webrtcvad``): tiny and fast, but fires on tones and loud noise.

    Its noise model starts from fixed values and calls the first 100-200 ms of any non-silent stream speech,
    whatever the level; the first ``warmup_ms`` of a stream are therefore judged silence (still fed to the
    model so it adapts). The segmenter's pre-roll keeps the audio of speech that starts the stream.
    """

    def __init__(self, aggressiveness: int = 2, frame_ms: int = 30, warmup_ms: int = 240) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}")
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"frame_ms must be 10, 20 or 30 (what WebRTC accepts), got {frame_ms!r}")
        if warmup_ms < 0:
            raise ValueError(f"warmup_ms must be at least 0, got {warmup_ms!r}")
        self.aggressiveness = aggressiveness
        self._frame_samples = SAMPLE_RATE * frame_ms // 1000
        self._warmup_frames = -(-warmup_ms // frame_ms)
        self.reset()

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    def classify(self, frames: np.ndarray) -> list[bool]:
        frames = _check_frames(frames, self._frame_samples)
        scaled = np.minimum(frames, 1.0)  # as np.round(np.clip(x, -1, 1) * 32767), by ufuncs alone
        np.maximum(scaled, -1.0, out=scaled)
        np.multiply(scaled, 32767.0, out=scaled)
        pcm = memoryview(np.rint(scaled, out=scaled).astype("<i2").tobytes())
        step = 2 * self._frame_samples
        decisions = []
        for row in range(frames.shape[0]):
            speech = self._vad.is_speech(pcm[row * step : (row + 1) * step], SAMPLE_RATE)
            self._frames += 1
            decisions.append(speech and self._frames > self._warmup_frames)
        return decisions

    def is_speech(self, frame: np.ndarray) -> bool:
        return self.classify(_one_frame(frame, self._frame_samples))[0]

    def reset(self) -> None:
        # The C detector adapts its noise model: a new instance is a clean start.
        self._vad = webrtcvad.Vad(self.aggressiveness)
        self._frames = 0


SILERO_PACKAGE = "silero-vad"
SILERO_FILE = "silero_vad.onnx"


def silero_model_path() -> Path:
    """The ONNX file shipped in the ``silero_vad`` package, found without importing it (that imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "data" / SILERO_FILE
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"Silero VAD model {SILERO_FILE} not found: install the {SILERO_PACKAGE!r} package "
        f"(`pip install --no-deps {SILERO_PACKAGE}`; only its ONNX file is used) or pass model_path"
    )


@lru_cache(maxsize=4)
def _session(path: Path) -> ort.InferenceSession:
    """One session per model file, shared by all streams (``run`` is thread-safe; the state is per stream)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class SileroVad:
    """Silero VAD v5 (ONNX) on CPU: a small recurrent network, far fewer false alarms on tones than WebRTC.

    The graph takes ``input`` (1, 64 + 512): the last 64 samples of the previous window as context, then the
    new window; ``state`` (2, 1, 128) carried from call to call; ``sr`` = 16000. It returns the speech
    probability and the next state.
    """

    WINDOW = 512
    CONTEXT = 64

    def __init__(self, threshold: float = 0.5, model_path: str | Path | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie between 0 and 1, got {threshold!r}")
        path = Path(model_path) if model_path is not None else silero_model_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"Silero VAD model {path} not found: pass an existing model_path, or leave it unset to use "
                f"{SILERO_FILE} of the {SILERO_PACKAGE!r} package"
            )
        self.threshold = threshold
        self._session = _session(path.resolve())
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    @property
    def frame_samples(self) -> int:
        return self.WINDOW

    def probabilities(self, frames: np.ndarray) -> list[float]:
        """Speech probability of each frame (one per row), in order; advances the recurrent state."""
        found = []
        for frame in _check_frames(frames, self.WINDOW):
            window = np.concatenate([self._context, frame])[None, :]
            output, self._state = self._session.run(
                ["output", "stateN"], {"input": window, "state": self._state, "sr": self._rate}
            )
            self._context = window[0, -self.CONTEXT :]
            found.append(float(output[0, 0]))
        return found

    def classify(self, frames: np.ndarray) -> list[bool]:
        return [p >= self.threshold for p in self.probabilities(frames)]

    def is_speech(self, frame: np.ndarray) -> bool:
        return self.classify(_one_frame(frame, self.WINDOW))[0]

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)


VAD_KINDS = {"webrtc": WebRtcVad, "silero": SileroVad}


def make_vad(kind: str, **options: Any) -> Vad:
    """A detector by configuration name (``webrtc`` or ``silero``) with its keyword options."""
    try:
        factory = VAD_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown VAD kind {kind!r}; choose one of {', '.join(VAD_KINDS)}") from None
    try:
        return factory(**options)
    except TypeError as error:
        raise ValueError(f"bad options for the {kind} VAD: {error}") from error
