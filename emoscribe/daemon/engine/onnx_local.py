"""Local ONNX Runtime engine: TensorRT → CUDA → CPU, whichever starts, with length buckets and warm-up."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from emoscribe.bundle import AFFECT_OUTPUT, STATS_OUTPUT, Bundle
from emoscribe.daemon.engine.protocol import EngineOutput

log = logging.getLogger(__name__)

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
DEVICES = {
    "auto": PREFERENCE,
    "tensorrt": PREFERENCE,
    "cuda": PREFERENCE[1:],
    "cpu": PREFERENCE[2:],
}
BUCKET_SAMPLES = 8_000
"""Batches are padded to a multiple of half a second, so the runtime sees few distinct shapes (TensorRT builds
an engine per shape profile; CUDA allocations get reused)."""


def pad_batch(utterances: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The towers' inputs: utterances zero-padded to a common multiple of :data:`BUCKET_SAMPLES`, and their
    lengths. The encoder sees the padding, so every engine pads alike to give the same outputs."""
    lengths = np.array([u.size for u in utterances], dtype=np.int64)
    width = int(-(-lengths.max() // BUCKET_SAMPLES) * BUCKET_SAMPLES)
    waveform = np.zeros((len(utterances), width), dtype=np.float32)
    for row, samples in enumerate(utterances):
        waveform[row, : samples.size] = samples
    return waveform, lengths


def open_session(path: str, device: str, threads: int) -> ort.InferenceSession:
    """A session on the first provider of the preference that actually starts; each fallback is logged.

    Asking for TensorRT where its libraries are missing, or CUDA on a machine without a GPU, falls through to
    the next provider instead of failing the daemon.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    available = set(ort.get_available_providers())
    wanted = [p for p in DEVICES[device] if p in available]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    for start in range(len(wanted)):
        providers = wanted[start:]
        try:
            session = ort.InferenceSession(path, options, providers=providers)
        except Exception as error:  # any provider failure means: try the next one
            log.warning("%s did not start (%s); falling back", providers[0], error)
            continue
        used = session.get_providers()
        if used[0] != providers[0]:
            log.warning("%s unavailable at run time; using %s", providers[0], used[0])
        log.info("engine %s on %s", path, used)
        return session
    raise RuntimeError(f"no execution provider could open {path} (available: {sorted(available)})")


class OnnxEngine:
    """The bundle's audio tower (and text tower, when present) in ONNX Runtime sessions."""

    def __init__(self, bundle: Bundle, device: str = "auto", variant: str = "auto", threads: int = 0) -> None:
        self.bundle = bundle
        probe = open_session(str(bundle.file("audio.onnx")), device, threads)
        on_gpu = probe.get_providers()[0] != "CPUExecutionProvider"
        name = _variant_file(bundle, variant, on_gpu)
        self.session = probe if name == "audio.onnx" else open_session(str(bundle.file(name)), device, threads)
        self.providers = self.session.get_providers()
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.on_gpu = on_gpu
        self.variant = name
        self._text = None
        self._tokenizer = None

    def warm_up(self, max_batch: int) -> None:
        """Run the shapes the daemon will meet first, so the first real utterance pays no start-up cost."""
        for batch, seconds in ((1, 1.0), (1, 3.0), (max_batch, 3.0)):
            self.infer([np.zeros(int(seconds * 16_000), dtype=np.float32)] * batch)

    def infer(self, utterances: Sequence[np.ndarray]) -> EngineOutput:
        waveform, lengths = pad_batch(utterances)
        if self.on_gpu:
            binding = self.session.io_binding()
            binding.bind_cpu_input("waveform", waveform)
            binding.bind_cpu_input("lengths", lengths)
            for name in self.outputs:
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            values = binding.copy_outputs_to_cpu()
        else:
            values = self.session.run(None, {"waveform": waveform, "lengths": lengths})
        named = dict(zip(self.outputs, values, strict=True))
        return EngineOutput(named["embedding"], named["logits"], named.get(STATS_OUTPUT), named.get(AFFECT_OUTPUT))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed run-time queries with the bundle's text tower; tokenised like training (``tokenizers``)."""
        if not self.bundle.has_text_tower:
            raise ValueError(f"{self.bundle.path}: the bundle has no text tower, so it cannot embed new queries")
        if self._text is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.bundle.file("tokenizer.json")))
            self._tokenizer.enable_padding()
            self._text = open_session(str(self.bundle.file("text.onnx")), "cpu", 1)
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        return self._text.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _variant_file(bundle: Bundle, variant: str, on_gpu: bool) -> str:
    """fp16 on a GPU and fp32 on a CPU unless asked otherwise; a variant the bundle lacks is an error."""
    names = {"fp32": "audio.onnx", "fp16": "audio.fp16.onnx", "int8": "audio.int8.onnx"}
    if variant == "auto":
        name = "audio.fp16.onnx" if on_gpu else "audio.onnx"
        return name if name in bundle.manifest["files"] else "audio.onnx"
    if variant not in names:
        raise ValueError(f"variant must be auto, {', '.join(names)}; got {variant!r}")
    bundle.file(names[variant])
    return names[variant]
