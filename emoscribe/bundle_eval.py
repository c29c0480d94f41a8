"""Scoring a built bundle on any labelled corpus the way the daemon runs it: ONNX Runtime, and each speaker's clips
heard as one stream, in a seeded random order, so a speaker-normalising bundle knows 0, 1, 2, ... earlier
utterances as it would on a call, and a population-normalising one (``[population]``) has heard every stream
before. Every figure comes clean and through 8 kHz G.711 mu-law, each channel a fresh node.

This is the check for corpora nobody trained on (a folder with a ``manifest.csv``): it needs the bundle and the
daemon's dependencies, not torch or a training cache.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emoscribe.audio import load_audio
from emoscribe.bundle import Bundle
from emoscribe.daemon.describe import softmax
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.normalisation import open_normaliser
from emoscribe.daemon.population import PopulationSettings
from emoscribe.daemon.speaker_reference import Normaliser
from emoscribe.datasets import Utterance
from emoscribe.telephony import telephone
from emoscribe.training.metrics import calibration, classification_metrics, confusion

CHANNELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clean": lambda x: x,
    "ulaw": lambda x: telephone(x, codec="ulaw"),
}
BATCH = 16
MAX_SAMPLES = 30 * 16_000
"""Whisper's context; longer clips are cut, as in training."""
REFERENCE_BUCKETS = {"0": (0, 0), "1-2": (1, 2), "3-9": (3, 9), "10+": (10, np.inf)}
"""Earlier utterances of the speaker, grouped for the by-reference accuracy."""


def score_bundle(
    bundle: Bundle,
    utterances: Sequence[Utterance],
    device: str = "cpu",
    seed: int = 0,
    one_emotion: bool = False,
) -> list[dict]:
    """SER figures of ``utterances`` through each of :data:`CHANNELS`: each clip alone, and (for a bundle that
    normalises) heard as part of its speaker's stream, in the same order on every channel; clips of
    emotions the bundle lacks are skipped and counted. With ``one_emotion`` every stream is one speaker's clips
    of one emotion, as on a call where the caller stays angry: a speaker reference must not then drag the
    published emotion toward neutral."""
    labels = bundle.labels
    kept = [u for u in utterances if u.emotion in labels]
    skipped = dict(Counter(u.emotion for u in utterances if u.emotion not in labels))
    if not kept:
        raise ValueError(f"no clip has an emotion the bundle knows ({', '.join(labels)})")
    groups = _streams(kept, one_emotion)
    engine = OnnxEngine(bundle, device)
    out = []
    for channel in CHANNELS:
        normaliser = open_normaliser(bundle, True, PopulationSettings())
        result = {"channel": channel, "clips": len(kept), "speakers": len({u.speaker for u in kept})}
        result |= {"streams": len(groups), "one_emotion_streams": one_emotion, "skipped": skipped}
        result["judged_against"] = None if normaliser is None else type(normaliser).__name__
        out.append(result | _score_channel(engine, normaliser, groups, labels, channel, seed))
    return out


def _score_channel(
    engine: OnnxEngine,
    normaliser: Normaliser | None,
    groups: dict[str, list[Utterance]],
    labels: list[str],
    channel: str,
    seed: int,
) -> dict:
    rng = np.random.default_rng(seed)
    truth, alone, stream, references = [], [], [], []  # alone and stream: posteriors per clip
    for speaker, clips in groups.items():
        order = [clips[i] for i in rng.permutation(len(clips))]
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            audio = [CHANNELS[channel](load_audio(u.path)[0][:MAX_SAMPLES].astype(np.float32)) for u in chunk]
            output = engine.infer(audio)
            truth += [labels.index(u.emotion) for u in chunk]
            alone += list(softmax(output.logits))
            if normaliser is not None:
                _, logits, counts, _ = normaliser.judge([speaker] * len(chunk), output.layer_stats)
                stream += list(softmax(logits))
                references += [] if counts is None else counts.tolist()
        if normaliser is not None:
            normaliser.forget(speaker)
    truth_array = np.array(truth)
    result = {"clip_alone": _figures(truth_array, np.array(alone), len(labels))}
    if normaliser is not None:
        result["as_stream"] = _figures(truth_array, np.array(stream), len(labels))
        if references:  # by speaker: how many of the speaker's utterances each was judged against
            predicted = np.array(stream).argmax(1)
            result["as_stream_by_reference"] = _by_reference(truth_array, predicted, np.array(references))
    return result


def write_bundle_report(results: dict, out: Path) -> Path:
    """``results.json``, ``report.md`` and, where matplotlib is installed, a confusion plot per channel."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Bundle evaluation: {results['bundle']}", "", f"Command: `{results['command']}`  "]
    lines += [f"Machine: {results['machine']}", "", f"Clips: {results['selection']}", ""]
    if results["channels"][0].get("one_emotion_streams"):
        lines += ["Streams: each speaker's clips of one emotion (one-emotion streams).", ""]
    if judged := results["channels"][0].get("judged_against"):
        lines += [f"As a stream, each clip judged by {judged} (the daemon's choice for this bundle).", ""]
    lines += ["| channel | clips | speakers | judged | accuracy | UAR | macro-F1 | ECE | mean confidence |"]
    lines += ["| --- " * 9 + "|"]
    for channel in results["channels"]:
        for how in ("clip_alone", "as_stream"):
            if how in channel:
                m = channel[how]["ser"]
                cells = [channel["channel"], channel["clips"], channel["speakers"], how.replace("_", " ")]
                cells += [f"{100 * m[k]:.1f} %" for k in ("accuracy", "uar", "macro_f1")]
                calibrated = channel[how]["calibration"]
                cells += [f"{calibrated['ece']:.3f}", f"{100 * calibrated['mean_confidence']:.1f} %"]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    streams = [c for c in results["channels"] if "as_stream_by_reference" in c]
    if streams:
        lines += ["", "As a stream, by earlier utterances of the speaker:", ""]
        lines += ["| channel | " + " | ".join(streams[0]["as_stream_by_reference"]) + " |"]
        lines += ["| --- " * (len(streams[0]["as_stream_by_reference"]) + 1) + "|"]
        for channel in streams:
            cells = [
                f"{100 * v['accuracy']:.1f} % ({v['n']})" if v["n"] else "-"
                for v in channel["as_stream_by_reference"].values()
            ]
            lines.append(f"| {channel['channel']} | " + " | ".join(cells) + " |")
    skipped = results["channels"][0]["skipped"]
    if skipped:
        lines += ["", f"Skipped (emotions the bundle lacks): {skipped}"]
    lines += ["", *_plots(results, out)]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _plots(results: dict, out: Path) -> list[str]:
    try:
        from emoscribe.plots import plot_confusion
    except ImportError:
        return ["(confusion plots need matplotlib: pip install 'emoscribe[train]')"]
    lines = []
    for channel in results["channels"]:
        how = "as_stream" if "as_stream" in channel else "clip_alone"
        plot = out / f"confusion-{channel['channel']}.png"
        matrix = np.array(channel[how]["confusion"])
        plot_confusion(matrix, results["labels"], f"{channel['channel']}, {how.replace('_', ' ')}", plot)
        lines += [f"![confusion {channel['channel']}]({plot.name})", ""]
    return lines


def _streams(utterances: Sequence[Utterance], one_emotion: bool) -> dict[str, list[Utterance]]:
    """The streams the clips are heard as: one per speaker, or one per speaker and emotion."""
    groups: dict[str, list[Utterance]] = defaultdict(list)
    for utterance in utterances:
        key = f"{utterance.speaker}/{utterance.emotion}" if one_emotion else utterance.speaker
        groups[key].append(utterance)
    return dict(sorted(groups.items()))


def _figures(truth: np.ndarray, posteriors: np.ndarray, n_classes: int) -> dict:
    predicted = posteriors.argmax(1)
    return {
        "ser": classification_metrics(truth, predicted, n_classes),
        "calibration": calibration(truth, posteriors),
        "confusion": confusion(truth, predicted, n_classes).tolist(),
    }


def _by_reference(truth: np.ndarray, predicted: np.ndarray, references: np.ndarray) -> dict[str, dict]:
    out = {}
    for name, (low, high) in REFERENCE_BUCKETS.items():
        rows = (references >= low) & (references <= high)
        accuracy = float((truth[rows] == predicted[rows]).mean()) if rows.any() else None
        out[name] = {"accuracy": accuracy, "n": int(rows.sum())}
    return out
