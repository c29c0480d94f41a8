"""The bundle contract: written, verified, loaded; a tampered or malformed bundle is refused naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoscribe.bundle import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PARTS,
    BundleError,
    file_entry,
    load_bundle,
    parts_dir,
)


def _bundle(folder: Path, **overrides) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audio.onnx").write_bytes(b"not really onnx, but bytes with a checksum")
    (folder / "prompts.npz").write_bytes(b"prompt bank bytes")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": "test",
        "sample_rate": 16000,
        "input": {"kind": "waveform"},
        "labels": ["neutral", "angry"],
        "embedding_dim": 4,
        "prompt_templates": {},
        "cue_thresholds": {},
        "provenance": {},
        "files": {name: file_entry(folder / name) for name in ("audio.onnx", "prompts.npz")},
    } | overrides
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_round_trip(tmp_path: Path) -> None:
    bundle = load_bundle(_bundle(tmp_path / "b"))
    assert bundle.labels == ["neutral", "angry"]
    assert bundle.file("audio.onnx").read_bytes().startswith(b"not really")
    assert not bundle.has_text_tower
    with pytest.raises(BundleError, match=r"no text\.onnx"):
        bundle.file("text.onnx")


def test_tampered_file_is_refused_by_name(tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "b")
    (folder / "prompts.npz").write_bytes(b"prompt bank bytes, edited")
    with pytest.raises(BundleError, match=r"prompts\.npz: checksum mismatch"):
        load_bundle(folder)
    assert load_bundle(folder, verify=False).manifest["name"] == "test", "verify=False skips checksums"


def test_missing_listed_file(tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "b")
    (folder / "audio.onnx").unlink()
    with pytest.raises(BundleError, match=r"audio\.onnx: listed in the manifest but missing"):
        load_bundle(folder)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"format_version": 99}, "version 99"),
        ({"labels": []}, "labels"),
        ({"sample_rate": "16k"}, "sample_rate"),
        ({"files": {"prompts.npz": {}}}, r"lists no audio\.onnx"),
        ({"files": {"../audio.onnx": {}, "audio.onnx": {}, "prompts.npz": {}}}, "must not contain a path"),
    ],
)
def test_malformed_manifest_is_refused(tmp_path: Path, override: dict, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        load_bundle(_bundle(tmp_path / "b", **override))


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="unreadable"):
        load_bundle(tmp_path)


def test_parts_are_found_by_bundle_name_or_as_a_folder(tmp_path: Path) -> None:
    assert parts_dir("tiny.en") == PARTS / "tiny.en"
    with pytest.raises(BundleError, match=r"no default bundle named 'nope'; known: base, tiny\.en"):
        parts_dir("nope")
    with pytest.raises(BundleError, match="no default bundle"):
        parts_dir(str(tmp_path))  # a folder without parts.json
    (tmp_path / "parts.json").write_text("{}")
    assert parts_dir(str(tmp_path)) == tmp_path
