"""The evaluation report: JSON with every figure, and a markdown summary with confusion-matrix plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emoscribe.plots import plot_confusion
from emoscribe.training.records import EMOTIONS

ANCHORS = {
    "RAVDESS SER, Dhamyal et al. 2023 best (fine-tuned)": 0.7246,
    "RAVDESS SER, state of the art they cite": 0.8182,
}
PAPER_RETRIEVAL = {"class": {"p@1": 0.75, "p@5": 0.45, "p@10": 0.38}, "acoustic prompts (best)": {"p@10": 0.23}}

LOCO_CASES = {
    "as_published": "as published (speakers' streams interleaved)",
    "neutral_70": "as published, 70 % neutral",
    "one_emotion_streams": "as published, one-emotion streams",
}
"""The held-out stream cases of ``experiment.stream_cases``, as the report names them."""


def write_report(results: dict, out: Path) -> Path:
    """Write ``results.json``, ``report.md`` and one confusion-matrix PNG per fixed-split test set."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Evaluation: {results['encoder']} encoder ({_encoder_training(results['config'])}) + trained heads",
        "",
    ]
    lines += [f"Command: `{results['command']}`  ", f"Machine: {results['machine']}", ""]
    lines += _ser_table(results)
    lines += _reference_table(results)
    lines += _retrieval_table(results)
    for name, by_variant in results["fixed_split"].items():
        plot = out / f"confusion-{name}.png"
        plot_confusion(np.array(by_variant["clean"]["confusion"]), EMOTIONS, f"{name} (clean)", plot)
        lines += [f"![confusion {name}]({plot.name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _encoder_training(config: dict) -> str:
    """How the encoder was trained, for the title: frozen, or which part of its top was tuned."""
    how = f"adapted (rank-{config['adapter_rank']} LoRA)" if config.get("adapter_rank") else "fine-tuned"
    tuned = [f"top {config['unfreeze_layers']} block(s) {how}"] if config.get("unfreeze_layers") else []
    tuned += ["attention pooling"] if config.get("attention_pooling") else []
    reference = config.get("reference", "speaker")
    normalised = [f"{reference}-normalised"] if config.get("speaker_normalisation") else []
    return ", ".join([*(tuned or ["frozen"]), *normalised])


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _ser_table(results: dict) -> list[str]:
    rows = ["## Speech emotion recognition (speaker-independent)", ""]
    rows += ["| evaluation | clean acc | clean UAR | clean macro-F1 | 8 kHz mu-law acc | mu-law UAR |"]
    rows += ["| --- | --- | --- | --- | --- | --- |"]

    def add(name: str, clean: dict, phone: dict) -> None:
        rows.append(
            f"| {name} | {_pct(clean['accuracy'])} | {_pct(clean['uar'])} | {_pct(clean['macro_f1'])} "
            f"| {_pct(phone['accuracy'])} | {_pct(phone['uar'])} |"
        )

    for name, by_variant in results["fixed_split"].items():
        add(
            f"fixed split, {name} (n={by_variant['clean']['ser']['n']})",
            by_variant["clean"]["ser"],
            by_variant["ulaw"]["ser"],
        )
        add(
            f"zero-shot by class prompts, {name}",
            by_variant["clean"]["zero_shot_ser"],
            by_variant["ulaw"]["zero_shot_ser"],
        )
    for name, by_variant in results.get("leave_one_corpus_out", {}).items():
        add(
            f"leave one corpus out, {name}, clip alone (4 classes; arousal-level corpora: 3 levels)",
            by_variant["clean"]["ser"],
            by_variant["ulaw"]["ser"],
        )
        for case, shown in LOCO_CASES.items():
            if case in by_variant["clean"]:
                add(f"leave one corpus out, {name}, {shown}", by_variant["clean"][case], by_variant["ulaw"][case])
    for name, by_split in results.get("ablation", {}).items():
        ravdess = by_split["ravdess-17-20"]
        add(f"ablation: {name}, RAVDESS 17-20", ravdess["clean"]["ser"], ravdess["ulaw"]["ser"])
    floor = results["linear_probe_floor"]
    add("floor: last layer mean+std + logistic regression, RAVDESS 17-20", floor["clean"], floor["ulaw"])
    if "cross_validation" in results:
        rows.append(_cv_row(results["cross_validation"]["summary"]))
    rows += ["", "Anchors from the papers: " + "; ".join(f"{k}: {_pct(v)}" for k, v in ANCHORS.items()), ""]
    return rows


def _cv_row(cv: dict) -> str:
    def spread(key: str) -> str:
        return f"{_pct(cv[key]['mean'])} ± {_pct(cv[key]['sd'])}"

    return (
        f"| 5-fold speaker CV, RAVDESS 01-20 (mean ± sd) | {spread('clean/accuracy')} | {spread('clean/uar')} "
        f"| {spread('clean/macro_f1')} | {spread('ulaw/accuracy')} | {spread('ulaw/uar')} |"
    )


def _reference_table(results: dict) -> list[str]:
    """SER of a speaker-normalised model by how many other clips of the speaker it knows."""
    ravdess = results["fixed_split"]["ravdess-17-20"]
    if "ser_by_reference" not in ravdess["clean"]:
        return []
    rows = ["## By what the model knows of the speaker", ""]
    rows += [
        "Speaker-normalised heads judge each clip against other clips of its speaker (drawn at random from the "
        "held-out clips, through the same channel); the figures above know 10, as the daemon does ten "
        "utterances into a call. One emotion: 8 clips all of one emotion, as when a call's earlier utterances "
        "were alike.",
        "",
        "| reference | RAVDESS 17-20 clean | mu-law | 5-fold CV clean (mean ± sd) | CV mu-law |",
        "| --- | --- | --- | --- | --- |",
    ]
    folds = results.get("cross_validation", {}).get("per_fold", [])
    for case in ravdess["clean"]["ser_by_reference"]:
        cells = [_pct(ravdess[v]["ser_by_reference"][case]["accuracy"]) for v in ("clean", "ulaw")]
        for variant in ("clean", "ulaw"):
            values = np.array([f[variant]["ser_by_reference"][case]["accuracy"] for f in folds])
            cells.append(f"{_pct(values.mean())} ± {_pct(values.std(ddof=1))}" if len(values) > 1 else "-")
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    return [*rows, ""]


def _retrieval_table(results: dict) -> list[str]:
    rows = ["## Emotion audio retrieval, RAVDESS 17-20 (Dhamyal et al. Table 3 protocol)", ""]
    rows += [
        "| queries | training prompts | P@1 | P@5 | P@10 | queries |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    runs = results.get("ablation") or {"prompt_augmentation": results["fixed_split"]}
    for name, by_split in runs.items():
        for family, figures in by_split["ravdess-17-20"]["clean"]["retrieval"].items():
            if figures:
                rows.append(
                    f"| {family} | {name} | {figures['p@1']:.2f} | {figures['p@5']:.2f} | {figures['p@10']:.2f} "
                    f"| {figures['queries']} |"
                )
    rows += ["", "Paper: class queries P@1/5/10 = 0.75 / 0.45 / 0.38; acoustic-prompt queries P@10 ≤ 0.23.", ""]
    return rows
