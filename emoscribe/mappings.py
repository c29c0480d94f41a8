"""Building dataclasses from config mappings (TOML, JSON) without letting a misspelt key pass silently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def refuse_unknown_keys(cls: type, data: Mapping[str, Any], what: str) -> None:
    """Raise ``ValueError`` naming every key of ``data`` that is not a field of dataclass ``cls``."""
    known = [field.name for field in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
