"""Arousal and valence: where each categorical emotion sits on the circumplex, and arousal-level labels.

Categorical corpora name emotions, not dimensions, so the dimensional targets come from a mapping. The
coordinates follow Russell (1980), "A circumplex model of affect", J. Pers. Soc. Psychol. 39(6), 1161-1178
(Fig. 2 / Table 3: the angular positions of the emotion words on the valence-by-arousal plane), read as points
in -1…1; neutral is the origin and calm the low-arousal pleasant quadrant. BAVED's arousal levels
(``lowarousal``, ``neutral``, ``higharousal``) carry arousal only and no valence. Torch-free: the daemon and
evaluation read it too.
"""

from __future__ import annotations

CIRCUMPLEX: dict[str, tuple[float, float]] = {
    # emotion: (valence, arousal)
    "neutral": (0.0, 0.0),
    "calm": (0.6, -0.6),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.5),
    "angry": (-0.6, 0.8),
    "fearful": (-0.6, 0.7),
    "disgust": (-0.7, 0.3),
    "surprised": (0.4, 0.8),
}
"""Russell (1980) positions of the canonical emotions: valence and arousal, each -1…1."""

AROUSAL_LEVELS: dict[str, float] = {"lowarousal": -0.6, "neutral": 0.0, "higharousal": 0.7}
"""Arousal targets of arousal-level labels (BAVED): low matches tired/sad, high the mean of anger and joy."""

AROUSAL_NAMES = ("lowarousal", "neutral", "higharousal")
"""The levels in order, for 3-level arousal scores."""

AROUSAL_BOUNDS = (-0.3, 0.35)
"""Arousal values below the first bound read as low, above the second as high: the midpoints between levels."""


def is_arousal_corpus(labels: set[str]) -> bool:
    """A corpus whose labels include an arousal level labels arousal only (its ``neutral`` is a level too)."""
    return bool(labels & {"lowarousal", "higharousal"})


def affect_targets(label: str, arousal_only: bool) -> tuple[float | None, float | None]:
    """``(valence, arousal)`` targets of a label: both from the circumplex, or arousal alone for a level."""
    if arousal_only:
        return None, AROUSAL_LEVELS[label]
    return CIRCUMPLEX[label]


def arousal_level(value: float) -> int:
    """The index in :data:`AROUSAL_NAMES` of an arousal value."""
    low, high = AROUSAL_BOUNDS
    return 0 if value < low else 2 if value > high else 1


def affect_phrase(arousal: float, valence: float | None) -> str:
    """Words for the caption: "high arousal, negative valence"; a middling value is left out."""
    parts = []
    level = arousal_level(arousal)
    if level != 1:
        parts.append(f"{('low', '', 'high')[level]} arousal")
    if valence is not None and abs(valence) >= 0.3:
        parts.append(f"{'positive' if valence > 0 else 'negative'} valence")
    return ", ".join(parts)
