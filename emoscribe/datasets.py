"""Torch-free corpus indexing and speaker-independent splits, shared by training and evaluation.

Every loader returns :class:`Utterance` records with canonical emotion labels and corpus-unique speaker ids
(``<corpus>-<speaker>``, as in the shared manifest), so that splits never depend on a corpus' conventions.
Loaders only index: they read annotation files and names, never audio. A root that does not have the corpus'
standard layout raises :class:`LayoutError` naming what was expected, rather than giving an empty corpus.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from emoscribe.affect import is_arousal_corpus
from emoscribe.corpus import VALIDATION_SPEAKERS, parse_ravdess_name, read_manifest
from emoscribe.cues.vocabulary import normalise_emotion

AUDIO_SUFFIXES = (".wav", ".flac")
"""File types the name-based loaders index (the originals are WAV; the shared corpora are FLAC conversions)."""


class LayoutError(ValueError):
    """A corpus folder does not have the layout its loader expects."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """One clip: where it is, who said it, with which (canonical) emotion, and what was said where known.

    With ``arousal_only`` the corpus labels arousal levels (``emotion`` is then ``lowarousal``, ``neutral`` or
    ``higharousal``, see :mod:`emoscribe.affect`), which say nothing of the emotion category."""

    path: Path
    corpus: str
    speaker: str
    sex: str | None
    emotion: str
    text: str | None = None
    intensity: str | None = None
    arousal_only: bool = False


def from_manifest(folder: str | Path) -> list[Utterance]:
    """The shared corpora, from ``folder/manifest.csv``; a corpus whose labels include an arousal level
    (BAVED) is read as arousal-only."""
    clips = read_manifest(folder)
    labels: dict[str, set[str]] = {}
    for clip in clips:
        labels.setdefault(clip.corpus, set()).add(clip.emotion)
    arousal = {corpus for corpus, names in labels.items() if is_arousal_corpus(names)}
    return [
        Utterance(
            path=clip.path,
            corpus=clip.corpus,
            speaker=clip.speaker,
            sex=clip.gender if clip.gender in ("male", "female") else None,
            emotion=clip.emotion if clip.corpus in arousal else normalise_emotion(clip.emotion),
            text=clip.text or None,
            intensity=clip.intensity or None,
            arousal_only=clip.corpus in arousal,
        )
        for clip in clips
    ]


def from_manifests(folders: Sequence[str | Path]) -> list[Utterance]:
    """Several corpus folders read as one training set; a speaker id (corpus-prefixed) met in two folders is an
    error, since every split is by speaker."""
    out: list[Utterance] = []
    owner: dict[str, Path] = {}
    for folder in folders:
        utterances = from_manifest(folder)
        for speaker in {u.speaker for u in utterances}:
            if speaker in owner:
                raise ValueError(f"speaker {speaker} is in both {owner[speaker]} and {folder}")
            owner[speaker] = Path(folder)
        out += utterances
    return out


def _audio_files(root: Path, pattern: str, expected: str) -> list[Path]:
    if not root.is_dir():
        raise LayoutError(f"{root} is not a folder; expected {expected}")
    files = sorted(
        p for p in root.glob(pattern) if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        raise LayoutError(f"no audio files under {root}; expected {expected}")
    return files


RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}


def load_ravdess(root: str | Path) -> list[Utterance]:
    """RAVDESS speech: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (audio-only speech; song and video files skipped)."""
    expected = "Actor_XX/03-01-EE-II-SS-RR-AA.wav (RAVDESS audio-only speech)"
    out = []
    for path in _audio_files(Path(root), "Actor_*/*", expected):
        try:
            name = parse_ravdess_name(path.name)
        except ValueError as error:
            raise LayoutError(f"{path}: {error}; expected {expected}") from None
        if not path.name.startswith("03-01-"):
            continue
        out.append(
            Utterance(
                path=path,
                corpus="ravdess",
                speaker=f"ravdess-{name.actor:02d}",
                sex=name.sex,
                emotion=name.emotion,
                text=RAVDESS_STATEMENTS[name.statement],
                intensity=name.intensity,
            )
        )
    return out


def load_tess(root: str | Path) -> list[Utterance]:
    """TESS: ``OAF_*``/``YAF_*`` folders (or one flat folder) of ``OAF_back_angry.wav``; ``ps`` is surprised."""
    expected = "OAF_*/OAF_<word>_<emotion>.wav and YAF_*/YAF_<word>_<emotion>.wav (TESS)"
    out = []
    for path in _audio_files(Path(root), "**/[OY]AF_*", expected):
        parts = path.stem.split("_")
        if len(parts) != 3:
            raise LayoutError(f"{path}: not a TESS file name; expected {expected}")
        speaker, word, emotion = parts
        out.append(
            Utterance(
                path=path,
                corpus="tess",
                speaker=f"tess-{speaker}",
                sex="female",
                emotion=normalise_emotion(emotion),
                text=f"Say the word {word}",
                intensity="normal",
            )
        )
    return out


CREMA_SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
CREMA_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": None}


def load_crema_d(root: str | Path) -> list[Utterance]:
    """CREMA-D: ``AudioWAV/1001_DFA_ANG_XX.wav``; sex from ``VideoDemographics.csv`` beside it, else None."""
    root = Path(root)
    expected = "AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, e.g. AudioWAV/1001_DFA_ANG_XX.wav (CREMA-D)"
    files = _audio_files(root / "AudioWAV", "*", expected)
    sexes: dict[str, str] = {}
    demographics = root / "VideoDemographics.csv"
    if demographics.is_file():
        with demographics.open(newline="", encoding="utf-8-sig") as handle:
            sexes = {row["ActorID"].strip(): row["Sex"].strip().lower() for row in csv.DictReader(handle)}
    out = []
    for path in files:
        parts = path.stem.split("_")
        if len(parts) != 4 or parts[1] not in CREMA_SENTENCES or parts[3] not in CREMA_LEVELS:
            raise LayoutError(f"{path}: not a CREMA-D file name; expected {expected}")
        actor, sentence, emotion, level = parts
        out.append(
            Utterance(
                path=path,
                corpus="crema-d",
                speaker=f"crema-d-{actor}",
                sex=sexes.get(actor),
                emotion=normalise_emotion(emotion),
                text=CREMA_SENTENCES[sentence],
                intensity=CREMA_LEVELS[level],
            )
        )
    return out


EMODB_EMOTIONS = {
    "W": "angry",
    "L": "bored",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
"""EmoDB's German initials: Wut, Langeweile, Ekel, Angst, Freude, Trauer, Neutral."""

EMODB_SEX = {
    **dict.fromkeys(("03", "10", "11", "12", "15"), "male"),
    **dict.fromkeys(("08", "09", "13", "14", "16"), "female"),
}

EMODB_TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}

_EMODB_NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])[a-z]$")


def load_emodb(root: str | Path) -> list[Utterance]:
    """EmoDB: ``wav/03a01Fa.wav`` = speaker 03, text a01, emotion F (happy), version a."""
    expected = "wav/<speaker><text><emotion><version>.wav, e.g. wav/03a01Fa.wav (EmoDB)"
    out = []
    for path in _audio_files(Path(root) / "wav", "*", expected):
        match = _EMODB_NAME.match(path.stem)
        if match is None or match[1] not in EMODB_SEX:
            raise LayoutError(f"{path}: not an EmoDB file name; expected {expected}")
        speaker, text, emotion = match.groups()
        out.append(
            Utterance(
                path=path,
                corpus="emodb",
                speaker=f"emodb-{speaker}",
                sex=EMODB_SEX[speaker],
                emotion=EMODB_EMOTIONS[emotion],
                text=EMODB_TEXTS.get(text),
            )
        )
    return out


IEMOCAP_KEPT = frozenset({"ang", "hap", "exc", "sad", "neu", "fru", "sur", "fea", "dis"})
"""Categories indexed; ``xxx`` (no majority) and ``oth`` are skipped. ``exc`` stays ``excited``: merging it
into happy, as many papers do, is the caller's choice."""

_IEMOCAP_TURN = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\w+)\t\[")
_IEMOCAP_TEXT = re.compile(r"^(\S+) \[[^\]]*\]: ?(.*)$")


def load_iemocap(root: str | Path) -> list[Utterance]:
    """IEMOCAP: ``Session{1-5}/dialog/EmoEvaluation/*.txt`` labels, ``Session*/sentences/wav/<dialog>/<turn>.wav``.

    The speaker is the session and the sex letter of the turn (``iemocap-Ses01F``); transcripts come from
    ``dialog/transcriptions`` where present. Labelled turns without audio are skipped with a warning.
    """
    root = Path(root)
    expected = "Session{1-5}/dialog/EmoEvaluation/<dialog>.txt and Session{1-5}/sentences/wav/<dialog>/<turn>.wav"
    label_files = sorted(
        p for p in root.glob("Session[1-5]/dialog/EmoEvaluation/*.txt") if not p.name.startswith(".")
    )
    if not label_files:
        raise LayoutError(f"no IEMOCAP label files under {root}; expected {expected}")
    out, missing = [], 0
    for labels in label_files:
        session = labels.parents[2]
        texts = _iemocap_texts(session / "dialog" / "transcriptions" / labels.name)
        for line in labels.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _IEMOCAP_TURN.match(line)
            if match is None or match[2] not in IEMOCAP_KEPT:
                continue
            turn = match[1]
            path = session / "sentences" / "wav" / labels.stem / f"{turn}.wav"
            if not path.is_file():
                missing += 1
                continue
            sex_letter = turn[-4]
            out.append(
                Utterance(
                    path=path,
                    corpus="iemocap",
                    speaker=f"iemocap-{turn[:5]}{sex_letter}",
                    sex={"M": "male", "F": "female"}.get(sex_letter),
                    emotion=normalise_emotion(match[2]),
                    text=texts.get(turn),
                )
            )
    return _found(out, missing, root, expected)


def _iemocap_texts(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    matches = map(_IEMOCAP_TEXT.match, path.read_text(encoding="utf-8", errors="replace").splitlines())
    return {m[1]: m[2].strip() for m in matches if m is not None}


def load_meld(root: str | Path, audio_dir: str | Path, split: str = "train") -> list[Utterance]:
    """MELD: ``root/<split>_sent_emo.csv`` rows with audio extracted as ``audio_dir/dia{D}_utt{U}.wav``.

    One split at a time, since the splits reuse dialogue numbers. Speakers are the show's characters by name
    (``meld-Ross``); rows without audio (MELD has a few unreadable source videos) are skipped with a warning.
    """
    labels = Path(root) / f"{split}_sent_emo.csv"
    audio_dir = Path(audio_dir)
    expected = f"{labels.name} (MELD annotations) and {audio_dir}/dia<Dialogue_ID>_utt<Utterance_ID>.wav"
    if not labels.is_file() or not audio_dir.is_dir():
        raise LayoutError(f"missing {labels if not labels.is_file() else audio_dir}; expected {expected}")
    out, missing = [], 0
    with labels.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        columns = {"Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"}
        if not columns <= set(reader.fieldnames or ()):
            raise LayoutError(f"{labels}: expected columns {', '.join(sorted(columns))}")
        for row in reader:
            path = audio_dir / f"dia{row['Dialogue_ID'].strip()}_utt{row['Utterance_ID'].strip()}.wav"
            if not path.is_file():
                missing += 1
                continue
            out.append(
                Utterance(
                    path=path,
                    corpus="meld",
                    speaker=f"meld-{row['Speaker'].strip()}",
                    sex=None,
                    emotion=normalise_emotion(row["Emotion"]),
                    text=row["Utterance"].strip(),
                )
            )
    return _found(out, missing, audio_dir, expected)


def _found(out: list[Utterance], missing: int, root: Path, expected: str) -> list[Utterance]:
    """Annotation-driven loaders: no audio at all is a layout error, a few missing files a warning."""
    if not out:
        raise LayoutError(f"none of the annotated clips' audio was found under {root}; expected {expected}")
    if missing:
        warnings.warn(f"{missing} annotated clip(s) without audio under {root} skipped", stacklevel=3)
    return out


def split_by_speakers(
    utterances: Iterable[Utterance], validation_speakers: Iterable[str] = VALIDATION_SPEAKERS
) -> tuple[list[Utterance], list[Utterance]]:
    """(train, validation): the validation speakers' utterances held out whole."""
    held = frozenset(validation_speakers)
    train, validation = [], []
    for utterance in utterances:
        (validation if utterance.speaker in held else train).append(utterance)
    return train, validation


def speaker_folds(
    utterances: Iterable[Utterance], n_folds: int = 5, corpus: str | None = "ravdess"
) -> list[frozenset[str]]:
    """Disjoint speaker groups of one corpus (all corpora for ``None``) for speaker-fold cross-validation.

    Each sex is cut into ``n_folds`` runs of consecutive speaker ids, so folds are balanced by sex and
    reproducible: RAVDESS actors 01-20 give folds 01-04, 05-08, ..., 17-20, each two male and two female.
    """
    sexes: dict[str, str | None] = {}
    for u in utterances:
        if (corpus is None or u.corpus == corpus) and sexes.setdefault(u.speaker, u.sex) != u.sex:
            raise ValueError(f"speaker {u.speaker} has utterances labelled both {sexes[u.speaker]} and {u.sex}")
    if len(sexes) < n_folds:
        raise ValueError(f"{len(sexes)} speakers of corpus {corpus!r} cannot make {n_folds} folds")
    folds: list[set[str]] = [set() for _ in range(n_folds)]
    for sex in ("male", "female", None):
        group = sorted(s for s, x in sexes.items() if x == sex)
        size, extra = divmod(len(group), n_folds)
        bounds = [0]
        for i in range(n_folds):
            bounds.append(bounds[-1] + size + (i < extra))
        runs = sorted((group[a:b] for a, b in pairwise(bounds)), key=len, reverse=True)
        smallest_first = sorted(range(n_folds), key=lambda i: len(folds[i]))
        for i, run in zip(smallest_first, runs, strict=True):
            folds[i].update(run)
    return [frozenset(fold) for fold in folds]


def leave_one_corpus_out(
    utterances: Sequence[Utterance], held_out_corpus: str, shared_emotions_only: bool = True
) -> tuple[list[Utterance], list[Utterance]]:
    """(train, test): every other corpus against ``held_out_corpus``, by default on the emotions both have
    (a class the test corpus lacks, or the training corpora never saw, would only measure label mismatch)."""
    test = [u for u in utterances if u.corpus == held_out_corpus]
    train = [u for u in utterances if u.corpus != held_out_corpus]
    if not test or not train:
        raise ValueError(f"leave-one-corpus-out needs utterances of {held_out_corpus!r} and of another corpus")
    if shared_emotions_only:
        shared = {u.emotion for u in test} & {u.emotion for u in train}
        test = [u for u in test if u.emotion in shared]
        train = [u for u in train if u.emotion in shared]
    return train, test
