"""What the trust fields tell on held-out speakers: grounding AUROC, selective prediction, the quality gate.

Usage: python benchmarks/trust_eval.py --bundle DIR [--data DIR] [--cache DIR] [--grounding FILE]
       [--speakers ravdess-17,...] [--noise]

The bundle must not have seen the speakers (the shipped parts saw every corpus speaker; build the held-out
model with ``emoscribe export --bundle runs/tiny.en/parts-fixed-split --out DIR``). Each speaker's clips are heard
as one stream in a seeded random order, as the daemon hears a call: the bundle's speaker reference and the
caller's cue baseline both know the utterances before each one. Clean and through 8 kHz G.711 mu-law it prints

- the AUROC of the grounding score (the shipped cue model, as the daemon judges the label) for correct against
  wrong labels, beside the AUROC of the engine's confidence;
- the selective-prediction curve (accuracy at each coverage, utterances ranked by confidence), alone and with
  utterances whose cues contradict their label abstaining first, and the gain at 80 % coverage (target: at
  least 8 points over full coverage);
- where the default thresholds land (``[describe] min_confidence``, ``[grounding] contradiction_below``).

With ``--noise``, the clean RAVDESS clips again with white noise at 20, 10, 5 and 0 dB SNR: accuracy and the
quality gate's estimated SNR per level, the evidence for ``[abstain] min_snr_db``. Posteriors and cues are cached.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from machine import describe_machine

from emoscribe.audio import load_audio
from emoscribe.bundle import Bundle, load_bundle
from emoscribe.corpus import VALIDATION_SPEAKERS, Clip, read_manifest, stream_order
from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.binning import BinContext, QuantileBinner
from emoscribe.cues.grounding import GroundingModel
from emoscribe.cues.model import Cues
from emoscribe.cues.tracker import extract_cues
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.describe import softmax
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.quality import estimate_snr_db
from emoscribe.daemon.speaker_reference import speaker_normaliser
from emoscribe.telephony import telephone

COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
MAX_SAMPLES = 30 * 16_000
CHUNK = 16
NOISE_SNR_DB = (20.0, 10.0, 5.0, 0.0)
Channel = Callable[[np.ndarray], np.ndarray]


def white_noise(snr_db: float) -> Channel:
    def add(x: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(int(1000 * snr_db) + x.size)
        power = np.mean(x**2) / 10 ** (snr_db / 10)
        return (x + rng.normal(0.0, np.sqrt(power), x.size)).astype(np.float32)

    return add


CHANNELS: dict[str, Channel] = {"clean": lambda x: x, "ulaw": lambda x: telephone(x, codec="ulaw")}


def heard(clips: Sequence[Clip], bundle: Bundle, channel: str, transform: Channel, cache: Path) -> dict:
    """Per clip, in stream order: the audio's cues, its estimated SNR, and the bundle's posteriors as part of
    its speaker's stream (cached by bundle, channel and clip list)."""
    path = cache / f"{bundle.path.name}-{channel}.json"
    keys = [str(c.path) for c in clips]
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored["paths"] == keys:
            return stored
    engine = OnnxEngine(bundle, "cpu")
    normaliser = speaker_normaliser(bundle)
    cues, snr, posteriors = [], [], []
    for start in range(0, len(clips), CHUNK):
        chunk = clips[start : start + CHUNK]
        audio = [transform(load_audio(c.path)[0][:MAX_SAMPLES].astype(np.float32)) for c in chunk]
        output = engine.infer(audio)
        logits = output.logits
        if normaliser is not None:
            logits = normaliser.judge([c.speaker for c in chunk], output.layer_stats)[1]
        posteriors += softmax(logits.astype(np.float64)).tolist()
        cues += [extract_cues(x.astype(np.float64)).to_dict() for x in audio]
        snr += [estimate_snr_db(x.astype(np.float64)) for x in audio]
    stored = {"paths": keys, "labels": bundle.labels, "cues": cues, "snr_db": snr, "posteriors": posteriors}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored))
    return stored


def grounding_scores(
    clips: Sequence[Clip], record: dict, model: GroundingModel, binner: QuantileBinner, labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The grounding score of each clip's winning label as the daemon computes it (the caller's baseline
    before the clip, the sex the pitch token infers), and whether it was judged against the caller."""
    baselines: dict[str, SpeakerBaseline] = {}
    scores, caller = [], []
    for clip, data, posterior in zip(clips, record["cues"], record["posteriors"], strict=True):
        cues = Cues.from_dict(data)
        baseline = baselines.setdefault(clip.speaker, SpeakerBaseline(model.half_life, model.min_updates))
        sex = binner.tokens(cues, BinContext(baseline=baseline))["pitch"].sex
        verdict = model.judge(cues, labels[int(np.argmax(posterior))], labels, sex, baseline)
        scores.append(np.nan if verdict.score is None else verdict.score)
        caller.append(verdict.space == "caller")
        baseline.update(cues)
    return np.array(scores), np.array(caller)


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` against the rest (ties count half)."""
    pos, neg = score[positive], score[~positive]
    if not pos.size or not neg.size:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


def selective(rank: np.ndarray, correct: np.ndarray) -> dict[float, float]:
    """Accuracy over the best-ranked share of utterances, per coverage (ties broken by the original order)."""
    order = np.argsort(-rank, kind="stable")
    return {c: float(correct[order[: max(1, round(c * order.size))]].mean()) for c in COVERAGES}


def report(name: str, correct: np.ndarray, confidence: np.ndarray, grounding: np.ndarray, config: DaemonConfig):
    threshold = config.grounding.contradiction_below
    flagged = grounding < threshold
    by_confidence = selective(confidence, correct)
    with_contradiction = selective(confidence - 2.0 * flagged, correct)
    kept = (confidence >= config.describe.min_confidence) & ~(flagged & config.abstain.on_contradiction)
    print(f"\n{name}: {correct.size} utterances, accuracy {100 * correct.mean():.1f} %")
    print(
        f"  AUROC correct vs wrong: confidence {auroc(confidence, correct):.3f}, "
        f"grounding {auroc(grounding, correct):.3f}"
    )
    print("  coverage                        " + "  ".join(f"{int(100 * c):>5d} %" for c in COVERAGES))
    for label, curve in (("by confidence", by_confidence), ("contradictions abstain first", with_contradiction)):
        print(f"  {label:<31} " + "  ".join(f"{100 * v:6.1f}" for v in curve.values()))
    gain = 100 * (by_confidence[0.8] - by_confidence[1.0])
    print(
        f"  gain at 80 % coverage, by confidence: {gain:+.1f} points "
        f"(target >= +8: {'met' if gain >= 8 else 'missed'})"
    )
    wrong_flagged = 100 * (~correct[flagged]).mean() if flagged.any() else float("nan")
    print(
        f"  contradiction (grounding < {threshold}): {100 * flagged.mean():.1f} % of utterances, "
        f"{wrong_flagged:.1f} % of them wrong (all: {100 * (~correct).mean():.1f} %)"
    )
    print(f"  default thresholds: coverage {100 * kept.mean():.1f} %, accuracy {100 * correct[kept].mean():.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data")))
    parser.add_argument("--cache", type=Path, default=Path("runs/trust"))
    parser.add_argument("--grounding", type=Path, help="grounding model file (default: the shipped one)")
    parser.add_argument("--speakers", default=",".join(sorted(VALIDATION_SPEAKERS)))
    parser.add_argument("--noise", action="store_true", help="also score the clean clips with added noise")
    args = parser.parse_args()
    started = time.monotonic()
    print(f"machine: {describe_machine()}; bundle {args.bundle}")
    bundle = load_bundle(args.bundle)
    model = GroundingModel.load(args.grounding) if args.grounding else GroundingModel.default()
    binner = QuantileBinner.from_document(bundle.manifest["cue_thresholds"]["quantile_bins"])
    speakers = set(args.speakers.split(","))
    clips = [
        c for c in stream_order(read_manifest(args.data)) if c.speaker in speakers and c.emotion in bundle.labels
    ]
    config = DaemonConfig()
    labels = bundle.labels
    for channel, transform in CHANNELS.items():
        record = heard(clips, bundle, channel, transform, args.cache)
        posteriors = np.array(record["posteriors"])
        truth = np.array([labels.index(c.emotion) for c in clips])
        correct = posteriors.argmax(1) == truth
        grounding, caller = grounding_scores(clips, record, model, binner, labels)
        print(
            f"\n=== {channel}: grounding judged against the caller for {100 * caller.mean():.1f} % of utterances"
        )
        for corpus in sorted({c.corpus for c in clips}):
            rows = np.array([c.corpus == corpus for c in clips])
            names = sorted({c.speaker for c in clips if c.corpus == corpus})
            report(
                f"{channel}, {', '.join(names)}", correct[rows], posteriors.max(1)[rows], grounding[rows], config
            )
        report(f"{channel}, all", correct, posteriors.max(1), grounding, config)
    if args.noise:
        ravdess = [c for c in clips if c.corpus == "ravdess"]
        truth = np.array([labels.index(c.emotion) for c in ravdess])
        print("\nRAVDESS clips with white noise added: true SNR -> estimated SNR (median), accuracy")
        for snr in NOISE_SNR_DB:
            record = heard(ravdess, bundle, f"noise{snr:g}", white_noise(snr), args.cache)
            correct = np.array(record["posteriors"]).argmax(1) == truth
            print(
                f"  {snr:5.1f} dB -> {np.median(record['snr_db']):5.1f} dB, accuracy {100 * correct.mean():.1f} %"
            )
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
