"""The six eGeMAPS-style concept tokens of the cue-alignment work: a compact, discrete view of how a clip sounds.

Each concept is one cue cut at its corpus tertiles into low / mid / high, so every level is equally common in
the corpus the edges were fitted on and the tokens carry no assumption about recording gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emoscribe.cues.edges import (
    check_edges,
    level_of,
    quantile_edges,
    read_edges_file,
    read_packaged_edges,
    write_edges_file,
)
from emoscribe.cues.model import Cues

CONCEPT_CUES: dict[str, str] = {
    "energy": "intensity_mean_db",
    "pitch": "f0_median_st",
    "dynamics": "intensity_range_db",
    "brightness": "alpha_ratio_db",
    "formants": "f1_mean_hz",
    "voice_quality": "hnr_db",
}
CONCEPTS: tuple[str, ...] = tuple(CONCEPT_CUES)
N_BINS = 3


class ConceptTokenizer:
    """Concept levels from tertile edges; fitted with :meth:`fit`, persisted as JSON like the quantile binner."""

    KIND = "emoscribe.concept_tokenizer"
    n_bins = N_BINS

    def __init__(self, edges: Mapping[str, Sequence[float]]) -> None:
        if set(edges) != set(CONCEPTS):
            raise ValueError(f"edges must have exactly the concepts {', '.join(CONCEPTS)}, got {sorted(edges)}")
        self.edges = {concept: check_edges(edges[concept], N_BINS, concept) for concept in CONCEPTS}

    @classmethod
    def fit(cls, cues: Sequence[Cues]) -> ConceptTokenizer:
        """Tertile edges of each concept's cue over a corpus (undefined values are left out)."""
        return cls(
            {
                concept: quantile_edges([c.get(cue) for c in cues], N_BINS, concept)
                for concept, cue in CONCEPT_CUES.items()
            }
        )

    @classmethod
    def default(cls) -> ConceptTokenizer:
        """The edges shipped with the package (``data/concept_edges.json``, fitted on the training corpus)."""
        return read_packaged_edges("concept_edges.json", cls.KIND, cls.from_document)

    def tokens(self, cues: Cues) -> dict[str, str | None]:
        """Level of every concept; ``None`` where its cue is undefined."""
        return {concept: level_of(cues.get(CONCEPT_CUES[concept]), self.edges[concept]) for concept in CONCEPTS}

    @staticmethod
    def as_text(tokens: Mapping[str, str | None]) -> list[str]:
        """Tokens such as ``"<energy_high>"`` in concept order; undefined concepts are left out."""
        return [f"<{concept}_{tokens[concept]}>" for concept in CONCEPTS if tokens.get(concept) is not None]

    def save(self, path: str | Path) -> None:
        write_edges_file(path, self.KIND, N_BINS, {"edges": self.edges})

    @classmethod
    def load(cls, path: str | Path) -> ConceptTokenizer:
        return read_edges_file(path, cls.KIND, cls.from_document)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ConceptTokenizer:
        return cls(document["edges"])
