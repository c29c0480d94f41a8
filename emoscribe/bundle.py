"""The model bundle contract: a directory with ``manifest.json`` and the files it lists with their sha256.

Torch-free: the daemon opens bundles with this module alone, and refuses one whose manifest is malformed or whose
files do not match their checksums, naming the file, before it loads any model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "emoscribe.bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_FILES = ("audio.onnx", "prompts.npz")
SPEAKER_MODEL = "speaker.onnx"
STATS_OUTPUT = "layer_stats"
"""The audio tower's third output in a bundle that normalises by speaker: per-layer statistics of the clip."""
AFFECT_OUTPUT = "affect"
"""The last output of the audio tower (and of ``speaker.onnx``) in a bundle whose heads predict arousal and
valence: ``(batch, 4)`` valence, arousal (-1…1), then the standard deviation the head expects of each."""
SPEAKER_INPUTS = (STATS_OUTPUT, "reference_count", "reference_mean", "reference_var")
"""What ``speaker.onnx`` takes: the clip's statistics, and the count, mean and variance of the statistics of the
speaker's earlier utterances (count 0: none, judged against the population)."""
PARTS = Path(__file__).parent / "export" / "parts"
"""Committed trained parts, one folder per default bundle; ``emoscribe export`` builds bundles from them."""

REFERENCES = ("speaker", "population")
"""What a bundle's ``speaker.onnx`` judges an utterance against (``speaker_normalisation.reference``)."""

_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "name": str,
    "sample_rate": int,
    "input": dict,
    "labels": list,
    "embedding_dim": int,
    "prompt_templates": dict,
    "cue_thresholds": dict,
    "provenance": dict,
    "files": dict,
}


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the bundle file at fault."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle: its folder and manifest."""

    path: Path
    manifest: dict[str, Any]

    def file(self, name: str) -> Path:
        """Path of a listed file; ``BundleError`` if the bundle has no such file."""
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.path}: the bundle has no {name}")
        return self.path / name

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def has_text_tower(self) -> bool:
        return "text.onnx" in self.manifest["files"]

    @property
    def has_affect(self) -> bool:
        """Whether the audio tower outputs arousal and valence (bundles built before it did not)."""
        return AFFECT_OUTPUT in self.manifest["input"]["outputs"]

    @property
    def reference(self) -> str | None:
        """What ``speaker.onnx`` was trained to judge against: ``speaker`` (a stream's earlier utterances) or
        ``population`` (every stream of a node); ``None`` for a bundle without it. Older bundles: speaker."""
        section = self.manifest.get("speaker_normalisation")
        return None if section is None else section.get("reference", "speaker")

    @property
    def speaker_horizon(self) -> int | None:
        """Earlier utterances a speaker reference holds at most, for a bundle that normalises by speaker."""
        section = self.manifest.get("speaker_normalisation")
        return None if section is None else section["horizon"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """The manifest entry of one bundle file."""
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}


def load_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Open and check a bundle: manifest schema, required files, and (with ``verify``) every checksum."""
    folder = Path(path)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{manifest_path}: not found; is {folder} a model bundle?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path}: unreadable ({error})") from None
    _check_schema(manifest, manifest_path)
    for name in REQUIRED_FILES:
        if name not in manifest["files"]:
            raise BundleError(f"{manifest_path}: lists no {name}, which every bundle needs")
    for name, entry in manifest["files"].items():
        file = folder / name
        if Path(name).name != name:
            raise BundleError(f"{manifest_path}: file name {name!r} must not contain a path")
        if not file.is_file():
            raise BundleError(f"{file}: listed in the manifest but missing")
        if verify and sha256_of(file) != entry.get("sha256"):
            raise BundleError(f"{file}: checksum mismatch (the file was changed or corrupted after export)")
    return Bundle(folder, manifest)


def _check_schema(manifest: Any, source: Path) -> None:
    if not isinstance(manifest, dict):
        raise BundleError(f"{source}: the manifest must be a JSON object")
    for key, kind in _SCHEMA.items():
        if key not in manifest:
            raise BundleError(f"{source}: missing key {key!r}")
        if not isinstance(manifest[key], kind):
            raise BundleError(f"{source}: {key!r} must be {getattr(kind, '__name__', kind)}")
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{source}: format {manifest['format']!r} version {manifest['format_version']!r}; "
            f"this emoscribe reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    if not manifest["labels"] or not all(isinstance(label, str) for label in manifest["labels"]):
        raise BundleError(f"{source}: 'labels' must be a non-empty list of strings")
    speaker = manifest.get("speaker_normalisation")
    if speaker is not None:
        horizon = speaker.get("horizon") if isinstance(speaker, dict) else None
        if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
            raise BundleError(f"{source}: 'speaker_normalisation' needs a positive integer 'horizon'")
        if SPEAKER_MODEL not in manifest["files"]:
            raise BundleError(f"{source}: 'speaker_normalisation' is set but {SPEAKER_MODEL} is not listed")
        if speaker.get("reference", "speaker") not in REFERENCES:
            raise BundleError(
                f"{source}: 'speaker_normalisation.reference' must be one of {', '.join(REFERENCES)}"
            )


def cache_root() -> Path:
    """Where built default bundles live: ``$EMOSCRIBE_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("EMOSCRIBE_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emoscribe" / "bundles"


def parts_dir(name: str) -> Path:
    """The committed parts of default bundle ``name``, or ``name`` itself if it is a folder of parts (such as
    the ``parts-fixed-split`` that ``emoscribe train`` leaves)."""
    folder = Path(name) if (Path(name) / "parts.json").is_file() else PARTS / name
    if not (folder / "parts.json").is_file():
        known = sorted(p.name for p in PARTS.glob("*") if (p / "parts.json").is_file())
        raise BundleError(f"no default bundle named {name!r}; known: {', '.join(known) or 'none'}")
    return folder


def bundle_key(parts: Path) -> str:
    """Content address of a default bundle: the hash of its committed parts (which pin the encoder by sha256)."""
    digest = hashlib.sha256()
    for file in sorted(parts.iterdir()):
        if file.is_file():
            digest.update(file.name.encode() + bytes.fromhex(sha256_of(file)))
    return digest.hexdigest()[:16]


def default_bundle_path(name: str) -> Path:
    """Where default bundle ``name`` is (or will be) built."""
    return cache_root() / f"{name}-{bundle_key(parts_dir(name))}"


def resolve_bundle(spec: str) -> Bundle:
    """A bundle directory, or a default bundle by name from the cache; a missing one says how to build it."""
    if Path(spec).is_dir():
        return load_bundle(spec)
    path = default_bundle_path(spec)
    if not (path / MANIFEST).exists():
        raise BundleError(
            f"default bundle {spec!r} is not built yet ({path}); build it with `emoscribe export --bundle {spec}` "
            "(needs pip install 'emoscribe[train]'), or pass a bundle directory"
        )
    return load_bundle(path)
