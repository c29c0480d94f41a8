"""A tiny model bundle built from numpy and onnx alone, so daemon tests need neither torch nor trained weights.

Its audio tower maps two waveform statistics (mean |x| and RMS over the valid samples) through fixed random
matrices to an L2-normalised embedding and SER logits: louder audio moves the logits, which tests can see.
With ``speaker=True`` the tower also outputs those statistics as ``layer_stats`` ``(batch, 1, 2)``, and a
``speaker.onnx`` maps ``stats - count / (count + 1) * reference_mean`` through the same matrices, so what a
stream heard before moves the outputs. With ``affect=True`` both towers also output ``affect`` ``(batch, 4)``:
tanh of the same source through a random matrix (valence, arousal), then a sigmoid (their standard deviations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emoscribe.bundle import (
    AFFECT_OUTPUT,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SPEAKER_INPUTS,
    SPEAKER_MODEL,
    STATS_OUTPUT,
    file_entry,
)
from emoscribe.cues.concepts import ConceptTokenizer
from emoscribe.export.prompt_bank import bank_prompts

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
DIM = 16


def _heads(source: str) -> list[onnx.NodeProto]:
    """embedding = normalise(source @ W), logits = source @ V."""
    return [
        helper.make_node("MatMul", [source, "W"], ["raw"]),
        helper.make_node("ReduceL2", ["raw"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Add", ["norm", "eps"], ["norm_eps"]),
        helper.make_node("Div", ["raw", "norm_eps"], ["embedding"]),
        helper.make_node("MatMul", [source, "V"], ["logits"]),
    ]


def _affect(source: str) -> list[onnx.NodeProto]:
    """affect = [tanh(source @ A), sigmoid(source @ S)]."""
    return [
        helper.make_node("MatMul", [source, "A"], ["affect_raw"]),
        helper.make_node("Tanh", ["affect_raw"], ["affect_value"]),
        helper.make_node("MatMul", [source, "S"], ["affect_spread"]),
        helper.make_node("Sigmoid", ["affect_spread"], ["affect_sd"]),
        helper.make_node("Concat", ["affect_value", "affect_sd"], [AFFECT_OUTPUT], axis=1),
    ]


def _with_affect(nodes, outputs, initializers, source: str, affect: np.ndarray | None) -> None:
    """Append the affect output to a graph being built, for a bundle with it."""
    if affect is None:
        return
    nodes += _affect(source)
    outputs.append(helper.make_tensor_value_info(AFFECT_OUTPUT, TensorProto.FLOAT, ["batch", 4]))
    initializers += [numpy_helper.from_array(affect[:, :2], "A"), numpy_helper.from_array(affect[:, 2:], "S")]


def _model(nodes, name: str, inputs, outputs, initializers) -> onnx.ModelProto:
    model = helper.make_model(
        helper.make_graph(nodes, name, inputs, outputs, initializers), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _head_outputs() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM]),
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)]),
    ]


def _speaker_graph(w: np.ndarray, v: np.ndarray, affect: np.ndarray | None = None) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Add", ["reference_count", "one_float"], ["count_plus"]),
        helper.make_node("Div", ["reference_count", "count_plus"], ["weight"]),
        helper.make_node("Reshape", ["weight", "column"], ["weight_col"]),
        helper.make_node("Reshape", ["reference_mean", "flat"], ["mean_flat"]),
        helper.make_node("Reshape", ["layer_stats", "flat"], ["stats_flat"]),
        helper.make_node("Mul", ["mean_flat", "weight_col"], ["shift"]),
        helper.make_node("Sub", ["stats_flat", "shift"], ["centred"]),
        *_heads("centred"),
    ]
    inputs = [
        helper.make_tensor_value_info("layer_stats", TensorProto.FLOAT, ["batch", 1, 2]),
        helper.make_tensor_value_info("reference_count", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info("reference_mean", TensorProto.FLOAT, ["batch", 1, 2]),
        helper.make_tensor_value_info("reference_var", TensorProto.FLOAT, ["batch", 1, 2]),
    ]
    initializers = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(v, "V"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one_float"),
        numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "column"),
        numpy_helper.from_array(np.array([-1, 2], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"),
    ]
    outputs = _head_outputs()
    _with_affect(nodes, outputs, initializers, "centred", affect)
    return _model(nodes, "fake_speaker_tower", inputs, outputs, initializers)


def _audio_graph(w: np.ndarray, v: np.ndarray, speaker: bool, affect: np.ndarray | None = None) -> onnx.ModelProto:
    """Heads over stats = [mean|x|, rms] over valid samples (and, with ``speaker``, stats as layer_stats)."""
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
        *_heads("stats"),
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
    outputs = _head_outputs()
    if speaker:
        nodes.append(helper.make_node("Unsqueeze", ["stats", "axis1"], ["layer_stats"]))
        outputs.append(helper.make_tensor_value_info("layer_stats", TensorProto.FLOAT, ["batch", 1, 2]))
    _with_affect(nodes, outputs, initializers, "stats", affect)
    inputs = [
        helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "length"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
    ]
    return _model(nodes, "fake_audio_tower", inputs, outputs, initializers)


TEXT_WORDS = ("an", "agitated", "calm", "customer", "voice", "angry", "happy", "sad", "quiet", "loud")


def _text_graph(table: np.ndarray) -> onnx.ModelProto:
    """Token ids → masked mean of a random embedding table → L2-normalised embedding, like the real tower."""
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["vectors"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("LpNormalization", ["summed"], ["embedding"], axis=1, p=2),
    ]
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
    ]
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
    ]
    outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])]
    return _model(nodes, "fake_text_tower", inputs, outputs, initializers)


def _write_tokenizer(path: Path) -> int:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[PAD]": 0, "[UNK]": 1, **{word: index + 2 for index, word in enumerate(TEXT_WORDS)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(path))
    return len(vocab)


def make_fake_bundle(
    folder: Path,
    seed: int = 0,
    speaker: bool = False,
    horizon: int = 20,
    text: bool = False,
    affect: bool = False,
    reference: str = "speaker",
) -> Path:
    """Write a complete, checksummed bundle into ``folder``; with ``speaker``, one that normalises over
    ``horizon`` utterances against ``reference`` (a stream's speaker, or the node's population); with
    ``text``, one with a text tower (a word-level tokenizer and a random word-embedding table) that embeds
    run-time queries."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w = rng.normal(size=(2, DIM)).astype(np.float32)
    v = rng.normal(size=(2, len(LABELS))).astype(np.float32) * 20
    a = (rng.normal(size=(2, 4)) * 20).astype(np.float32) if affect else None
    onnx.save(_audio_graph(w, v, speaker, a), str(folder / "audio.onnx"))
    files = ["audio.onnx", "prompts.npz"]
    if speaker:
        onnx.save(_speaker_graph(w, v, a), str(folder / SPEAKER_MODEL))
        files.append(SPEAKER_MODEL)
    if text:
        words = _write_tokenizer(folder / "tokenizer.json")
        onnx.save(_text_graph(rng.normal(size=(words, DIM)).astype(np.float32)), str(folder / "text.onnx"))
        files += ["text.onnx", "tokenizer.json"]
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
        "files": {name: file_entry(folder / name) for name in files},
    }
    if speaker:
        manifest["input"]["outputs"].append(STATS_OUTPUT)
        manifest["speaker_normalisation"] = {
            "model": SPEAKER_MODEL,
            "inputs": list(SPEAKER_INPUTS),
            "horizon": horizon,
            "reference": reference,
        }
    if affect:
        manifest["input"]["outputs"].append(AFFECT_OUTPUT)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder
