"""Bin edges: quantile fitting, level lookup, and the versioned JSON files that carry fitted edges.

Shared by the quantile binner and the concept tokenizer, so both fit, validate, save and load edges one way.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

EDGES_FORMAT_VERSION = 1
_LEVELS: dict[int, tuple[str, ...]] = {2: ("low", "high"), 3: ("low", "mid", "high")}
_MIN_VALUES_PER_BIN = 5


class _Binned(Protocol):
    n_bins: int


T = TypeVar("T", bound=_Binned)


def levels_for(n_bins: int) -> tuple[str, ...]:
    """Level names for ``n_bins`` bins (2: low/high, 3: low/mid/high)."""
    try:
        return _LEVELS[n_bins]
    except KeyError:
        raise ValueError(f"n_bins must be 2 or 3, got {n_bins!r}") from None


def level_of(value: float | None, edges: Sequence[float]) -> str | None:
    """Level of ``value`` between sorted ``edges``; ``None`` for an undefined value."""
    value = defined(value)
    if value is None:
        return None
    return levels_for(len(edges) + 1)[int(np.searchsorted(edges, value, side="right"))]


def quantile_edges(values: Sequence[float | None], n_bins: int, name: str) -> tuple[float, ...]:
    """Edges at the ``k / n_bins`` quantiles of the defined values; too few of them is an error naming ``name``."""
    levels_for(n_bins)
    known = np.array([v for v in (defined(x) for x in values) if v is not None], dtype=float)
    needed = n_bins * _MIN_VALUES_PER_BIN
    if known.size < needed:
        raise ValueError(f"{name}: {known.size} defined values, need at least {needed} for {n_bins} bins")
    return tuple(float(q) for q in np.quantile(known, np.arange(1, n_bins) / n_bins))


def check_edges(edges: Sequence[float], n_bins: int, name: str) -> tuple[float, ...]:
    """Validated edges: ``n_bins - 1`` finite, non-decreasing numbers."""
    levels_for(n_bins)
    values = tuple(float(e) for e in edges)
    if len(values) != n_bins - 1:
        raise ValueError(f"{name}: expected {n_bins - 1} edges for {n_bins} bins, got {len(values)}")
    if not all(map(math.isfinite, values)) or any(b < a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name}: edges must be finite and non-decreasing, got {list(values)}")
    return values


def write_edges_file(path: str | Path, kind: str, n_bins: int, tables: Mapping[str, Any]) -> None:
    """Write fitted edges as JSON, tagged with ``kind`` and the format version so a loader can refuse others."""
    document = {"kind": kind, "version": EDGES_FORMAT_VERSION, "n_bins": n_bins}
    document |= {name: {key: list(edges) for key, edges in table.items()} for name, table in tables.items()}
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_edges_file(path: str | Path, kind: str, build: Callable[[dict[str, Any]], T]) -> T:
    """Read a file written by :func:`write_edges_file`; anything malformed raises ``ValueError`` naming it."""
    return parse_edges_document(Path(path).read_text(encoding="utf-8"), str(path), kind, build)


def read_packaged_edges(name: str, kind: str, build: Callable[[dict[str, Any]], T]) -> T:
    """Read edges shipped in the package's ``data`` folder; a missing file says so and what to do instead."""
    resource = resources.files("emoscribe.cues").joinpath("data", name)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no shipped edges at {resource}; fit them on a corpus and pass the file"
        ) from None
    return parse_edges_document(text, str(resource), kind, build)


def parse_edges_document(text: str, source: str, kind: str, build: Callable[[dict[str, Any]], T]) -> T:
    """Parse and check an edges document from ``source``, then ``build`` the object (whose checks also count)."""
    problem = f"{source} is not a valid {kind} file (format version {EDGES_FORMAT_VERSION})"
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("top level is not an object")
        if document.get("kind") != kind:
            raise ValueError(f"kind is {document.get('kind')!r}")
        if document.get("version") != EDGES_FORMAT_VERSION:
            raise ValueError(f"version is {document.get('version')!r}")
        result = build(document)
        if result.n_bins != document["n_bins"]:
            raise ValueError(f"n_bins is {document['n_bins']!r} but the edges make {result.n_bins} bins")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{problem}: {exc}") from exc
    return result


def defined(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is missing or not finite."""
    return None if value is None or not math.isfinite(value) else float(value)
