"""A tiny model bundle built from numpy and onnx alone, so daemon tests need neither torch nor trained weights.

Its audio tower maps two waveform statistics (mean |x| and RMS over the valid samples) through fixed random
matrices to an L2-normalised embedding and SER logits: louder audio moves the logits, which tests can see.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emoscribe.bundle import FORMAT, FORMAT_VERSION, MANIFEST, file_entry
from emoscribe.cues.concepts import ConceptTokenizer
from emoscribe.export.prompt_bank import bank_prompts

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
DIM = 16


def _audio_graph(rng: np.random.Generator) -> onnx.ModelProto:
    """embedding = normalise(stats @ W), logits = stats @ V, with stats = [mean|x|, rms] over valid samples."""
    w = rng.normal(size=(2, DIM)).astype(np.float32)
    v = rng.normal(size=(2, len(LABELS))).astype(np.float32) * 20
    nodes = [
        helper.make_node("Shape", ["waveform"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["width"], axis=0),
        helper.make_node("Range", ["zero_scalar", "width", "one_scalar"], ["positions"]),
        helper.make_node("Unsqueeze", ["lengths", "axis1"], ["lengths_col"]),
        helper.make_node("Less", ["positions", "lengths_col"], ["valid"]),
        helper.make_node("Cast", ["valid"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Abs", ["waveform"], ["abs"]),
        helper.make_node("Mul", ["abs", "mask"], ["abs_valid"]),
        helper.make_node("ReduceSum", ["abs_valid", "axis1"], ["abs_sum"], keepdims=1),
        helper.make_node("Mul", ["waveform", "waveform"], ["square"]),
        helper.make_node("Mul", ["square", "mask"], ["square_valid"]),
        helper.make_node("ReduceSum", ["square_valid", "axis1"], ["square_sum"], keepdims=1),
        helper.make_node("Cast", ["lengths_col"], ["count"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["abs_sum", "count"], ["mean_abs"]),
        helper.make_node("Div", ["square_sum", "count"], ["mean_square"]),
        helper.make_node("Sqrt", ["mean_square"], ["rms"]),
        helper.make_node("Concat", ["mean_abs", "rms"], ["stats"], axis=1),
        helper.make_node("MatMul", ["stats", "W"], ["raw"]),
        helper.make_node("ReduceL2", ["raw"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Add", ["norm", "eps"], ["norm_eps"]),
        helper.make_node("Div", ["raw", "norm_eps"], ["embedding"]),
        helper.make_node("MatMul", ["stats", "V"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(v, "V"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
        numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_scalar"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one_scalar"),
        numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"),
    ]
    graph = helper.make_graph(
        nodes,
        "fake_audio_tower",
        [
            helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "length"]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def make_fake_bundle(folder: Path, seed: int = 0) -> Path:
    """Write a complete, checksummed bundle (no text tower) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(_audio_graph(rng), str(folder / "audio.onnx"))
    prompts = bank_prompts([*LABELS, None])
    bank = rng.normal(size=(len(prompts), DIM)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    np.savez(
        folder / "prompts.npz",
        texts=np.array([p.text for p in prompts]),
        families=np.array([p.family for p in prompts]),
        embeddings=bank,
    )
    bins = json.loads((Path(__file__).parents[1] / "emoscribe/cues/data/bins.json").read_text())
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": "fake",
        "sample_rate": 16000,
        "input": {"kind": "waveform", "inputs": ["waveform", "lengths"], "outputs": ["embedding", "logits"]},
        "labels": LABELS,
        "embedding_dim": DIM,
        "prompt_templates": {},
        "cue_thresholds": {"quantile_bins": bins, "concepts": {"edges": ConceptTokenizer.default().edges}},
        "provenance": {"note": "test bundle: random weights"},
        "files": {name: file_entry(folder / name) for name in ("audio.onnx", "prompts.npz")},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder
