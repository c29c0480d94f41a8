"""The ``emoscribe cues``, ``fit-bins`` and ``fit-grounding`` commands: cue reports for files, bin edges and the
grounding cue model for a corpus."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from emoscribe.audio import AudioFileError, load_audio
from emoscribe.corpus import VALIDATION_SPEAKERS, parse_ravdess_name, read_manifest, stream_order
from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.batch import files_cues
from emoscribe.cues.binning import (
    BinContext,
    Binner,
    LiteratureBinner,
    QuantileBinner,
    SpeakerRelativeBinner,
    infer_sex,
)
from emoscribe.cues.concepts import ConceptTokenizer
from emoscribe.cues.grounding import LabelledCues, fit_grounding
from emoscribe.cues.model import Cues
from emoscribe.cues.prompts import acoustic_prompts, describe_sentence
from emoscribe.cues.signal import AudioInputError
from emoscribe.cues.tracker import extract_cues
from emoscribe.cues.vocabulary import normalise_emotion
from emoscribe.demo import demo_clips


class Sex(StrEnum):
    male = "male"
    female = "female"


@dataclass(frozen=True, slots=True)
class CueReport:
    """Everything ``emoscribe cues`` says about one file."""

    file: str
    cues: Cues
    sex: str | None
    sex_source: str
    emotion: str | None
    tokens: dict[str, Any]
    concepts: dict[str, str | None]
    prompts: list[str]
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cues": self.cues.to_dict()}


def report(
    file: str,
    cues: Cues,
    binner: Binner,
    concepts: ConceptTokenizer,
    sex: str | None = None,
    emotion: str | None = None,
    baseline: SpeakerBaseline | None = None,
) -> CueReport:
    """Bin, tokenise and phrase one file's cues; the sex is inferred from F0 only when not given."""
    source = "given" if sex else "inferred"
    sex = sex or infer_sex(cues)
    if sex is None:
        source = "unknown"
    tokens = binner.tokens(cues, BinContext(sex=sex, baseline=baseline))
    return CueReport(
        file=file,
        cues=cues,
        sex=sex,
        sex_source=source,
        emotion=emotion,
        tokens={family: asdict(token) for family, token in tokens.items()},
        concepts=concepts.tokens(cues),
        prompts=[prompt.text for prompt in acoustic_prompts(tokens, emotion)],
        sentence=describe_sentence(tokens, emotion),
    )


UNITS = {"_hz": "Hz", "_st": "st", "_db": "dB", "_s": "s", "_rate": "syl/s", "_db_per_khz": "dB/kHz"}


def _render(item: CueReport, console: Console) -> None:
    table = Table(title=item.file, title_justify="left", show_header=True, header_style="bold")
    table.add_column("cue")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, value in item.cues.to_dict().items():
        unit = next(
            (u for suffix, u in sorted(UNITS.items(), key=lambda kv: -len(kv[0])) if name.endswith(suffix)), ""
        )
        shown = "—" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
        table.add_row(name, shown, unit)
    console.print(table)
    sex = f"{item.sex or 'unknown'} ({item.sex_source})"
    levels = ", ".join(f"{family}={token['level'] or '?'}" for family, token in item.tokens.items())
    concepts = ", ".join(f"{name}={level or '?'}" for name, level in item.concepts.items())
    console.print(f"[bold]sex[/bold] {sex}   [bold]emotion[/bold] {item.emotion or '—'}")
    console.print(f"[bold]tokens[/bold] {levels}")
    console.print(f"[bold]concepts[/bold] {concepts}")
    console.print("[bold]prompts[/bold] " + " | ".join(item.prompts))
    console.print(f"[bold]caption[/bold] {item.sentence}\n")


class BinScheme(StrEnum):
    literature = "literature"
    quantile = "quantile"
    speaker = "speaker"


def cues_command(
    files: Annotated[list[Path] | None, typer.Argument(help="Audio files (WAV, FLAC, OGG, ...).")] = None,
    demo: Annotated[bool, typer.Option(help="Describe the bundled demo clips (labels from their names).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file, one per line.")] = False,
    bins: Annotated[BinScheme, typer.Option(help="How cues become low/high tokens.")] = BinScheme.literature,
    edges: Annotated[
        Path | None, typer.Option(help="Edges JSON from fit-bins for --bins quantile (default: the shipped ones).")
    ] = None,
    sex: Annotated[
        Sex | None, typer.Option(help="Speaker sex for pitch bins; inferred from F0 if omitted.")
    ] = None,
    emotion: Annotated[str | None, typer.Option(help="Emotion label to phrase prompts with.")] = None,
) -> None:
    """Print acoustic cues, tokens, acoustic prompts and a caption for each file.

    With --bins speaker the files are taken as one speaker in the given order, each compared with the running
    baseline of the ones before it.
    """
    paths = [*(files or []), *(demo_clips() if demo else [])]
    if not paths:
        raise typer.BadParameter("give audio files or --demo")
    try:
        binner = _binner(bins, edges)
        label = normalise_emotion(emotion) if emotion else None
    except (ValueError, OSError) as error:
        raise typer.BadParameter(str(error)) from error
    concepts = ConceptTokenizer.default()
    baseline = SpeakerBaseline() if bins is BinScheme.speaker else None
    console = Console()
    failures = 0
    for path in paths:
        try:
            cues = extract_cues(load_audio(path)[0])
        except (AudioFileError, AudioInputError) as error:
            print(f"emoscribe cues: {error}", file=sys.stderr)
            failures += 1
            continue
        clip_emotion, clip_sex = label, sex.value if sex else None
        if demo and path in demo_clips():
            name = parse_ravdess_name(path.name)
            clip_emotion, clip_sex = clip_emotion or name.emotion, clip_sex or name.sex
        item = report(str(path), cues, binner, concepts, clip_sex, clip_emotion, baseline)
        if baseline is not None:
            baseline.update(cues)
        if as_json:
            print(json.dumps(item.to_dict()), flush=True)
        else:
            _render(item, console)
    if failures:
        raise typer.Exit(1)


def _binner(scheme: BinScheme, edges: Path | None) -> Binner:
    if scheme is BinScheme.quantile:
        return QuantileBinner.load(edges) if edges else QuantileBinner.default()
    if edges is not None:
        raise ValueError("--edges applies only to --bins quantile")
    return SpeakerRelativeBinner() if scheme is BinScheme.speaker else LiteratureBinner()


def fit_bins_command(
    data: Annotated[Path, typer.Option(help="Corpus folder holding manifest.csv.", envvar="EMOSCRIBE_DATA")],
    out: Annotated[Path, typer.Option(help="Folder for bins.json and concept_edges.json.")] = Path(),
    n_bins: Annotated[int, typer.Option(help="Quantile bins per prompt family (2 or 3).")] = 2,
    include_validation: Annotated[
        bool, typer.Option(help="Also fit on the held-out validation speakers (off: results stay unbiased).")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (0 = one per core).")] = 0,
) -> None:
    """Fit quantile bin edges and concept-token tertiles on a corpus and save them as JSON."""
    clips = [c for c in read_manifest(data) if include_validation or c.speaker not in VALIDATION_SPEAKERS]
    cues = files_cues([c.path for c in clips], workers or None)
    try:
        binner = QuantileBinner.fit(cues, n_bins=n_bins, sexes=[c.gender for c in clips])
        concepts = ConceptTokenizer.fit(cues)
    except ValueError as error:
        print(f"emoscribe fit-bins: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    out.mkdir(parents=True, exist_ok=True)
    binner.save(out / "bins.json")
    concepts.save(out / "concept_edges.json")
    speakers = len({c.speaker for c in clips})
    print(
        f"fitted on {len(clips)} clips of {speakers} speakers: {out / 'bins.json'}, {out / 'concept_edges.json'}"
    )


GROUNDING_CHANNELS = (None, "ulaw")
"""Clean and through 8 kHz G.711 mu-law: the daemon meets both, and the codec moves spectral cues."""


def fit_grounding_command(
    data: Annotated[Path, typer.Option(help="Corpus folder holding manifest.csv.", envvar="EMOSCRIBE_DATA")],
    out: Annotated[Path, typer.Option(help="Grounding model file to write.")] = Path("grounding.json"),
    include_validation: Annotated[
        bool, typer.Option(help="Also fit on the held-out validation speakers (off: results stay unbiased).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of each speaker's simulated stream order.")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes (0 = one per core).")] = 0,
) -> None:
    """Fit the per-emotion cue model that grounds labels (emoscribe.cues.grounding) on a labelled corpus."""
    clips = [c for c in read_manifest(data) if include_validation or c.speaker not in VALIDATION_SPEAKERS]
    clips = [c for c in stream_order(clips, seed) if c.emotion]
    labelled = []
    for codec in GROUNDING_CHANNELS:
        channel = codec or "clean"
        for clip, cues in zip(clips, files_cues([c.path for c in clips], workers or None, codec), strict=True):
            sex = clip.gender if clip.gender in ("male", "female") else None
            stream = f"{clip.speaker}/{channel}"
            labelled.append(LabelledCues(cues, normalise_emotion(clip.emotion), stream, clip.speaker, sex))
    provenance = {
        "command": "emoscribe fit-grounding" + (" --include-validation" if include_validation else ""),
        "clips": len(clips),
        "speakers": sorted({c.speaker for c in clips}),
        "channels": [codec or "clean" for codec in GROUNDING_CHANNELS],
        "seed": seed,
    }
    try:
        model = fit_grounding(labelled, provenance=provenance)
    except ValueError as error:
        print(f"emoscribe fit-grounding: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"fitted on {len(clips)} clips of {len(provenance['speakers'])} speakers, clean and mu-law: {out}")
