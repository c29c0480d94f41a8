"""ONNX export of the towers, parity against PyTorch, and the fp16 (GPU) and int8 (CPU) variants."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxconverter_common.float16 import convert_float_to_float16
from onnxruntime.quantization import QuantType, quantize_dynamic

OPSET = 17

AUDIO_OUTPUTS = ("embedding", "logits")
TEXT_OUTPUTS = ("embedding",)


def export_checked(module: torch.nn.Module, inputs: dict[str, np.ndarray], path: Path, outputs: tuple) -> float:
    """Export with dynamic batch (and length) axes, then return the largest absolute difference between ONNX
    Runtime (CPU) and PyTorch over all outputs on ``inputs``."""
    axes = {name: {0: "batch", 1: "length"} if value.ndim == 2 else {0: "batch"} for name, value in inputs.items()}
    axes |= {name: {0: "batch"} for name in outputs}
    tensors = tuple(torch.from_numpy(value) for value in inputs.values())
    torch.onnx.export(
        module.eval(),
        tensors,
        str(path),
        input_names=list(inputs),
        output_names=list(outputs),
        dynamic_axes=axes,
        opset_version=OPSET,
        dynamo=False,
    )
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, inputs)
    with torch.inference_mode():
        expected = module(*tensors)
    expected = expected if isinstance(expected, tuple) else (expected,)
    return max(float(np.abs(g.astype(np.float64) - e.numpy()).max()) for g, e in zip(got, expected, strict=True))


def fp16_variant(source: Path, target: Path) -> None:
    """Weights and activations in fp16 with fp32 inputs and outputs, for GPU execution providers."""
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


def int8_variant(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the matrix multiplications, for CPU inference.

    The quantiser logs a warning for every tensor it leaves in float (shapes, masks): expected, so muted.
    """
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
