"""``emoscribe train`` and ``emoscribe export``: torch is imported inside them, so the CLI starts without it."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

Encoder = Annotated[str, typer.Option(help="Audio encoder: tiny.en (CPU bundle) or base (GPU bundle).")]


def train_command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            help="Corpus folder holding manifest.csv; repeat to train on several corpora at once (each with "
            "its own label set). Adds to the config's `data`.",
            envvar="EMOSCRIBE_DATA",
        ),
    ] = None,
    encoder: Encoder = "tiny.en",
    config: Annotated[Path | None, typer.Option(help="TOML file of training settings.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default runs/<encoder>).")] = None,
    cache: Annotated[Path, typer.Option(help="Feature and cue cache.")] = Path("runs/cache"),
    protocol: Annotated[
        bool, typer.Option(help="Also run cross-validation, leave-one-corpus-out, ablation.")
    ] = True,
    save_parts: Annotated[
        bool,
        typer.Option(
            help="Then train the same config on every speaker (validation ones included) and store it as the "
            "bundle's committed parts."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto (the GPU if torch sees one), cpu or cuda.")] = "auto",
    threads: Annotated[
        int, typer.Option(help="CPU threads of torch; 0: one per core (fewer where other jobs share the cores).")
    ] = 0,
) -> None:
    """Train the heads on frozen encoder features (then, if configured, the encoder's top with them) and evaluate
    them speaker-independently; the fixed split's model is kept as parts in <out>/parts-fixed-split."""
    import torch

    from emoscribe.bundle import PARTS
    from emoscribe.training.device import training_device
    from emoscribe.training.experiment import (
        ablation,
        cross_validation,
        every_speaker,
        fixed_split,
        fixed_training_rows,
        leave_one_corpus_out,
        linear_probe_floor,
        load_corpus,
        speakers_of,
    )
    from emoscribe.training.parts import save_parts as store_parts
    from emoscribe.training.report import write_report
    from emoscribe.training.train import TrainConfig

    settings = tomllib.loads(config.read_text(encoding="utf-8")) if config else {}
    try:
        train_config = TrainConfig.from_mapping({"encoder": encoder, **settings})
        where = training_device(device)
    except (TypeError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    folders = [Path(d) for d in train_config.data] + list(data or [])
    if not folders:
        raise typer.BadParameter("give --data (or `data` in the config): the corpus folder(s) to train on")
    torch.set_num_threads(threads or os.cpu_count() or 1)
    out = out or Path("runs") / train_config.encoder
    corpus = load_corpus(folders, train_config, cache, where)
    heads, top, fixed = fixed_split(corpus, train_config, out / "run")
    results = {
        "encoder": train_config.encoder,
        "command": shlex.join(["emoscribe", *sys.argv[1:]]),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.cuda.get_device_name(where) if where.type == 'cuda' else 'CPU'}",
        "config": asdict(train_config),
        "fixed_split": fixed,
        "linear_probe_floor": linear_probe_floor(corpus),
    }
    if protocol:
        results |= {
            "cross_validation": cross_validation(corpus, train_config),
            "leave_one_corpus_out": leave_one_corpus_out(corpus, train_config),
            "ablation": ablation(corpus, train_config),
        }
    print(f"report: {write_report(results, out)}")
    held_out = speakers_of(corpus, fixed_training_rows(corpus))
    fixed_parts = store_parts(out / "parts-fixed-split", heads, train_config, results, held_out, top)
    print(f"fixed-split parts: {fixed_parts}")
    if save_parts:
        final, final_top, rows = every_speaker(corpus, train_config, out / "run-all")
        shipped = store_parts(
            PARTS / train_config.encoder, final, train_config, results, speakers_of(corpus, rows), final_top
        )
        print(f"parts (every speaker): {shipped}")


def export_command(
    bundle: Annotated[
        str, typer.Option(help="Bundle name (a folder of emoscribe/export/parts), or a parts folder with --out.")
    ] = "tiny.en",
    out: Annotated[Path | None, typer.Option(help="Write here instead of the bundle cache.")] = None,
    triton: Annotated[
        Path | None,
        typer.Option(
            help="Also write the bundle's towers into this Triton model repository (--bundle may then also be "
            "a built bundle's directory)."
        ),
    ] = None,
    variant: Annotated[
        str, typer.Option(help="Audio tower for --triton: auto (fp16 where the bundle has it), fp32, fp16, int8.")
    ] = "auto",
) -> None:
    """Build the model bundle (ONNX towers, prompt bank, manifest) from the committed parts, with parity checks;
    with --triton, also serve its towers from a Triton Inference Server (``[engine] backend = "triton"``)."""
    import warnings

    # The exporter's notes on constant folding and tracing, and fp16's rounding of tiny constants, are expected;
    # what decides is the parity check, which fails the build loudly.
    warnings.filterwarnings("ignore", module=r"(torch|onnxconverter_common|transformers)")
    from emoscribe.bundle import MANIFEST, PARTS, BundleError, load_bundle, parts_dir

    if triton is not None and (Path(bundle) / MANIFEST).is_file():
        path = Path(bundle)
    else:
        try:
            parts = parts_dir(bundle)
        except BundleError as error:
            raise typer.BadParameter(str(error)) from error
        if out is None and parts.parent != PARTS:
            raise typer.BadParameter(f"{bundle} is not a default bundle: give --out for the bundle built from it")
        from emoscribe.export.build import build, cached_bundle

        path = build(parts, out) if out else cached_bundle(bundle).path
    if triton is not None:
        from emoscribe.export.triton import write_repository

        try:
            for model in write_repository(load_bundle(path), triton, variant):
                print(model)
        except ValueError as error:  # BundleError included
            raise typer.BadParameter(str(error)) from error
    print(path)


def eval_command(
    data: Annotated[Path, typer.Option(help="Corpus folder holding manifest.csv.", envvar="EMOSCRIBE_DATA")],
    bundle: Annotated[str, typer.Option(help="Default bundle name or a bundle directory.")] = "tiny.en",
    corpus: Annotated[str | None, typer.Option(help="Only clips of this corpus (manifest column).")] = None,
    speakers: Annotated[str | None, typer.Option(help="Only these speakers, comma-separated.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default runs/eval/<bundle name>).")] = None,
    device: Annotated[str, typer.Option(help="auto, tensorrt, cuda or cpu (ONNX Runtime providers).")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seeds the order each speaker's clips are heard in.")] = 0,
    one_emotion_streams: Annotated[
        bool, typer.Option(help="Hear each speaker's clips of each emotion as a stream of its own.")
    ] = False,
) -> None:
    """Score a built bundle on a labelled corpus as the daemon runs it (clip alone and as the speaker's stream,
    clean and 8 kHz mu-law); writes results.json and report.md. Needs no torch."""
    from emoscribe.bundle import BundleError, resolve_bundle
    from emoscribe.bundle_eval import score_bundle, write_bundle_report
    from emoscribe.datasets import from_manifest

    try:
        model = resolve_bundle(bundle)
    except BundleError as error:
        raise typer.BadParameter(str(error)) from error
    wanted = set(speakers.split(",")) if speakers else None
    clips = [
        u
        for u in from_manifest(data)
        if (corpus is None or u.corpus == corpus) and (wanted is None or u.speaker in wanted)
    ]
    if not clips:
        raise typer.BadParameter(f"no clip of {data} matches corpus={corpus} speakers={speakers}")
    try:
        channels = score_bundle(model, clips, device, seed, one_emotion_streams)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    results = {
        "bundle": model.manifest["name"],
        "bundle_path": str(model.path),
        "command": shlex.join(["emoscribe", *sys.argv[1:]]),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}, {device}",
        "selection": f"{data} corpus={corpus or 'all'} speakers={speakers or 'all'} seed={seed}"
        + (" one-emotion streams" if one_emotion_streams else ""),
        "labels": model.labels,
        "channels": channels,
    }
    for channel in channels:
        shown = [("clip alone", channel["clip_alone"])]
        shown += [("as stream", channel["as_stream"])] if "as_stream" in channel else []
        for how, figures in shown:
            ser = figures["ser"]
            print(
                f"{channel['channel']:<6} {how:<11} accuracy {100 * ser['accuracy']:5.1f} %  "
                f"UAR {100 * ser['uar']:5.1f} %  macro-F1 {100 * ser['macro_f1']:5.1f} %  "
                f"ECE {figures['calibration']['ece']:.3f}  ({channel['clips']} clips)"
            )
    print(f"report: {write_bundle_report(results, out or Path('runs/eval') / model.manifest['name'])}")
