"""A Triton Inference Server model repository of a bundle's towers, and what it promises the daemon's client.

Each tower becomes the model ``<bundle name>-<tower>`` on Triton's ONNX Runtime backend with dynamic batching.
Its ``config.pbtxt`` carries the bundle's name, the file it serves and that file's sha256 from the manifest as
model parameters, which any Triton client can read (``GetModelConfig``); the daemon compares them with its own
bundle at start, so a node never mixes a server's tower with another bundle's prompts and speaker graph.
Several bundles can share one repository (and one pool): their model names differ.

The speaker graph is not served: it costs the daemon 0.03-0.18 CPU-ms per utterance (tiny.en), about what
sending its 46 kB of inputs to the server would, a second round trip per batch would only add latency, and its
inputs are the daemon's per-stream state anyway. Torch-free; reading the graphs' inputs and outputs needs
``onnx``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from emoscribe.bundle import Bundle, BundleError

MODEL_VERSION = "1"
MODEL_FILE = "model.onnx"
BUNDLE_PARAMETER = "emoscribe_bundle"
FILE_PARAMETER = "emoscribe_file"
SHA256_PARAMETER = "emoscribe_sha256"
MAX_BATCH = 64
"""Rows per batch the server runs; a daemon sends larger batches in pieces."""
MAX_QUEUE_DELAY_US = 2_000
"""How long Triton holds a request to merge it with others of the same shape (the daemon pads utterances to
half-second widths, so requests from many nodes meet often)."""
AUDIO_VARIANTS = ("fp32", "fp16", "int8")
_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16", 6: "TYPE_INT32", 7: "TYPE_INT64"}
"""ONNX element types (``onnx.TensorProto``) of the towers' inputs and outputs, as Triton names them."""


def model_name(bundle: Bundle, tower: str) -> str:
    """The Triton model that serves ``tower`` ("audio" or "text") of ``bundle``."""
    return f"{bundle.manifest['name']}-{tower}"


def audio_file(bundle: Bundle, variant: str) -> str:
    """The audio tower a repository serves: ``auto`` is fp16 where the bundle has it (Triton pools run on
    GPUs), else fp32; a variant the bundle lacks is an error."""
    if variant == "auto":
        return "audio.fp16.onnx" if "audio.fp16.onnx" in bundle.manifest["files"] else "audio.onnx"
    if variant not in AUDIO_VARIANTS:
        raise ValueError(f"variant must be auto, {', '.join(AUDIO_VARIANTS)}; got {variant!r}")
    name = "audio.onnx" if variant == "fp32" else f"audio.{variant}.onnx"
    bundle.file(name)
    return name


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output as Triton sees it: per-row dims (the batch dimension left out; -1 for any size)."""

    name: str
    data_type: str
    dims: tuple[int, ...]

    def pbtxt(self) -> str:
        """A rank-1 ONNX tensor (one value per row) is sent as ``[batch, 1]`` and reshaped for the model, as
        Triton requires a dimension besides the batch."""
        dims = ", ".join(map(str, self.dims or (1,)))
        reshape = "" if self.dims else " reshape: { shape: [ ] }"
        return f'  {{ name: "{self.name}" data_type: {self.data_type} dims: [ {dims} ]{reshape} }}'


def graph_tensors(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX graph whose first dimension is the batch."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {initializer.name for initializer in graph.initializer}

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor = value.type.tensor_type
        if tensor.elem_type not in _TYPES:
            raise BundleError(f"{path}: {value.name} has ONNX type {tensor.elem_type}, which Triton is not given")
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if not dims or dims[0] != -1:
            raise BundleError(f"{path}: {value.name} has no batch dimension first (shape {dims})")
        return TensorSpec(value.name, _TYPES[tensor.elem_type], tuple(dims[1:]))

    inputs = [spec(value) for value in graph.input if value.name not in constants]
    return inputs, [spec(value) for value in graph.output]


def model_config(name: str, bundle: Bundle, file: str) -> str:
    """``config.pbtxt`` of one tower: ONNX Runtime backend, dynamic batching, the bundle's identity."""
    inputs, outputs = graph_tensors(bundle.file(file))
    identity = {
        BUNDLE_PARAMETER: bundle.manifest["name"],
        FILE_PARAMETER: file,
        SHA256_PARAMETER: bundle.manifest["files"][file]["sha256"],
    }
    lines = [
        f'name: "{name}"',
        'backend: "onnxruntime"',
        f"max_batch_size: {MAX_BATCH}",
        "input [",
        ",\n".join(spec.pbtxt() for spec in inputs),
        "]",
        "output [",
        ",\n".join(spec.pbtxt() for spec in outputs),
        "]",
        f"dynamic_batching {{ max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US} }}",
        *(f'parameters {{ key: "{key}" value: {{ string_value: "{text}" }} }}' for key, text in identity.items()),
    ]
    return "\n".join(lines) + "\n"


def write_repository(bundle: Bundle, folder: Path, variant: str = "auto") -> list[Path]:
    """Write (or replace) this bundle's models in the repository ``folder``; other models there stay. Each
    model is staged beside its final place and moved in whole, so a polling server never loads half a model."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", bundle.manifest["name"]):
        raise BundleError(f"{bundle.path}: bundle name {bundle.manifest['name']!r} cannot name a Triton model")
    towers = {"audio": audio_file(bundle, variant)}
    if bundle.has_text_tower:
        towers["text"] = "text.onnx"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for tower, file in towers.items():
        name = model_name(bundle, tower)
        staged = folder / f".{name}.partial"
        shutil.rmtree(staged, ignore_errors=True)
        (staged / MODEL_VERSION).mkdir(parents=True)
        shutil.copyfile(bundle.file(file), staged / MODEL_VERSION / MODEL_FILE)
        (staged / "config.pbtxt").write_text(model_config(name, bundle, file), encoding="utf-8")
        shutil.rmtree(folder / name, ignore_errors=True)
        staged.rename(folder / name)
        written.append(folder / name)
    return written
