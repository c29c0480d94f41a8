"""A ``true`` / ``false`` / ``auto`` setting, where ``auto`` lets the daemon decide from what it runs."""

from __future__ import annotations

from typing import Any, ClassVar, Self


class Switch(str):
    """A setting that is ``true``, ``false`` or ``auto``; TOML booleans and the usual words are taken."""

    WORDS: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("true", "on", "yes", "1"), "true"),
        **dict.fromkeys(("false", "off", "no", "0"), "false"),
        "auto": "auto",
    }

    @classmethod
    def parse(cls, value: Any) -> Self:
        if isinstance(value, bool):
            return cls("true" if value else "false")
        if isinstance(value, str) and value.lower() in cls.WORDS:
            return cls(cls.WORDS[value.lower()])
        raise ValueError(f"expected true, false or 'auto', got {value!r}")


AUTO = Switch("auto")
