"""Training records: each utterance with its emotion index, cues and the acoustic prompts that describe it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emoscribe.affect import affect_targets
from emoscribe.cues.batch import files_cues
from emoscribe.cues.binning import BinContext, Binner
from emoscribe.cues.model import Cues
from emoscribe.cues.prompts import acoustic_prompts
from emoscribe.datasets import Utterance
from emoscribe.training.cache import clips_key, corpus_rows

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
"""The SER classes: RAVDESS's eight, which cover TESS's seven."""

SHARED_CLASSES: tuple[str, ...] = ("angry", "happy", "neutral", "sad")
"""The emotions every categorical corpus here labels: leave-one-corpus-out is scored over these."""


@dataclass(frozen=True, slots=True)
class Record:
    """One clip as training sees it; ``prompts[0]`` is the class-label prompt, the rest are acoustic prompts.

    ``label`` is -1 for an arousal-only clip (no class prompt then); ``classes`` are the emotions its corpus
    labels, so a class the corpus lacks is never taught as a negative; ``valence``/``arousal`` are the
    circumplex targets (``None`` where the label says nothing of that dimension)."""

    utterance: Utterance
    label: int
    cues: Cues
    prompts: tuple[str, ...]
    families: tuple[str, ...]
    classes: frozenset[int] = frozenset(range(len(EMOTIONS)))
    valence: float | None = None
    arousal: float | None = None


def cached_cues(utterances: Sequence[Utterance], cache_dir: Path) -> list[Cues]:
    """Cues of every clip, from one JSON-lines cache file per corpus (computed where missing)."""
    out: list[Cues | None] = [None] * len(utterances)
    for rows in corpus_rows(utterances).values():
        members = [utterances[i] for i in rows]
        path = cache_dir / f"cues-{clips_key(members)}.jsonl"
        if not path.exists():
            cues = files_cues([u.path for u in members])
            cache_dir.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(c.to_dict()) + "\n" for c in cues), encoding="utf-8")
        lines = path.read_text(encoding="utf-8").splitlines()
        for row, line in zip(rows, lines, strict=True):
            out[row] = Cues.from_dict(json.loads(line))
    return out


def corpus_classes(utterances: Sequence[Utterance]) -> dict[str, frozenset[int]]:
    """The emotion classes each corpus labels (none for an arousal-only corpus)."""
    out: dict[str, set[int]] = {}
    for u in utterances:
        out.setdefault(u.corpus, set())
        if not u.arousal_only:
            out[u.corpus].add(EMOTIONS.index(u.emotion))
    return {corpus: frozenset(classes) for corpus, classes in out.items()}


def build_records(utterances: Sequence[Utterance], cues: Sequence[Cues], binner: Binner) -> list[Record]:
    """Label and prompt every utterance; the speaker's sex from the corpus picks the pitch bins."""
    classes = corpus_classes(utterances)
    records = []
    for utterance, clip_cues in zip(utterances, cues, strict=True):
        tokens = binner.tokens(clip_cues, BinContext(sex=utterance.sex))
        emotion = None if utterance.arousal_only else utterance.emotion
        prompts = acoustic_prompts(tokens, emotion)
        valence, arousal = affect_targets(utterance.emotion, utterance.arousal_only)
        records.append(
            Record(
                utterance=utterance,
                label=-1 if emotion is None else EMOTIONS.index(emotion),
                cues=clip_cues,
                prompts=tuple(p.text for p in prompts),
                families=tuple(p.family for p in prompts),
                classes=classes[utterance.corpus],
                valence=valence,
                arousal=arousal,
            )
        )
    return records
