"""The ``emoscribe`` command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from emoscribe.cli import app
from emoscribe.cues.binning import QuantileBinner
from emoscribe.cues.concepts import ConceptTokenizer

runner = CliRunner()


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_demo_json_reports_every_clip() -> None:
    result = runner.invoke(app, ["cues", "--demo", "--json"])
    assert result.exit_code == 0, result.output
    reports = _json_lines(result.stdout)
    assert len(reports) == 6
    by_name = {Path(r["file"]).name: r for r in reports}
    angry = by_name["03-01-05-02-01-01-10.flac"]
    neutral = by_name["03-01-01-01-01-01-10.flac"]
    assert angry["emotion"] == "angry" and angry["sex"] == "female" and angry["sex_source"] == "given"
    assert angry["tokens"]["intensity"]["level"] == "high"
    assert neutral["tokens"]["intensity"]["level"] == "low"
    assert "high intensity anger" in angry["prompts"]
    assert angry["prompts"][0] == "anger"
    assert angry["sentence"].startswith("A female voice") and "angry" in angry["sentence"]
    assert angry["cues"]["intensity_mean_db"] > neutral["cues"]["intensity_mean_db"] + 6
    assert set(angry["concepts"]) == {"energy", "pitch", "dynamics", "brightness", "formants", "voice_quality"}


def test_table_output_names_the_cues(demo_dir: Path) -> None:
    result = runner.invoke(app, ["cues", str(demo_dir / "03-01-04-01-01-01-03.flac")])
    assert result.exit_code == 0, result.output
    for text in ("f0_median_hz", "articulation_rate", "prompts", "caption"):
        assert text in result.stdout


def test_unreadable_files_are_reported_and_skipped(tmp_path: Path, demo_dir: Path) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio")
    missing = tmp_path / "missing.flac"
    good = demo_dir / "03-01-01-01-01-01-03.flac"
    result = runner.invoke(app, ["cues", "--json", str(garbage), str(good), str(missing)])
    assert result.exit_code == 1
    assert len(_json_lines(result.stdout)) == 1, "the readable file is still described"
    assert "garbage.wav: cannot read audio" in result.stderr
    assert "missing.flac: cannot read audio" in result.stderr


def test_empty_audio_file_is_a_clear_error(tmp_path: Path) -> None:
    import soundfile as sf

    empty = tmp_path / "empty.wav"
    sf.write(empty, [], 16000)
    result = runner.invoke(app, ["cues", str(empty)])
    assert result.exit_code == 1
    assert "no samples" in result.stderr


def test_no_input_is_a_usage_error() -> None:
    result = runner.invoke(app, ["cues"])
    assert result.exit_code == 2
    assert "--demo" in result.output


def test_bad_emotion_label_is_a_usage_error(demo_dir: Path) -> None:
    result = runner.invoke(app, ["cues", "--emotion", "grumpy", str(demo_dir / "03-01-01-01-01-01-03.flac")])
    assert result.exit_code == 2
    assert "grumpy" in result.output


def test_speaker_relative_bins_warm_up_over_files(demo_dir: Path) -> None:
    files = [str(p) for p in sorted(demo_dir.glob("*-03.flac"))] * 2
    result = runner.invoke(app, ["cues", "--json", "--bins", "speaker", *files])
    assert result.exit_code == 0, result.output
    reports = _json_lines(result.stdout)
    assert all(token["level"] is None for token in reports[0]["tokens"].values())
    assert any(token["level"] is not None for token in reports[-1]["tokens"].values())


def test_fit_bins_writes_loadable_edges(tmp_path: Path, demo_dir: Path) -> None:
    rows = ["path,corpus,speaker,gender,emotion,intensity,text,language,duration_s"]
    for path in sorted(demo_dir.glob("*.flac")) * 4:
        sex = "male" if path.stem.endswith("03") else "female"
        rows.append(f"{path},ravdess,ravdess-{path.stem[-2:]},{sex},neutral,normal,x,en,3.5")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "edges"
    result = runner.invoke(app, ["fit-bins", "--data", str(tmp_path), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "24 clips of 2 speakers" in result.stdout
    QuantileBinner.load(out / "bins.json")
    ConceptTokenizer.load(out / "concept_edges.json")


def test_fit_bins_with_too_little_data_says_why(tmp_path: Path, demo_dir: Path) -> None:
    path = sorted(demo_dir.glob("*.flac"))[0]
    rows = [
        "path,corpus,speaker,gender,emotion,intensity,text,language,duration_s",
        f"{path},x,s,male,sad,,t,en,1",
    ]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["fit-bins", "--data", str(tmp_path), "--out", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 1
    assert "need at least" in result.stderr


def test_the_demo_plays_one_stream_per_speaker() -> None:
    from emoscribe.corpus import parse_ravdess_name
    from emoscribe.demo import demo_clips, demo_streams

    streams = demo_streams()
    assert sorted(streams) == ["demo-actor03", "demo-actor10"]
    assert sorted(p for paths in streams.values() for p in paths) == demo_clips()
    for name, paths in streams.items():
        assert {f"demo-actor{parse_ravdess_name(p.name).actor:02d}" for p in paths} == {name}


def test_export_of_a_parts_folder_needs_out_so_the_bundle_cache_holds_only_default_bundles(
    tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "parts.json").write_text("{}")
    monkeypatch.chdir(tmp_path.parent)
    for given in (str(tmp_path), tmp_path.name):
        result = runner.invoke(app, ["export", "--bundle", given], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and "give --out" in result.output, result.output
    result = runner.invoke(app, ["export", "--bundle", "nope"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "no default bundle named 'nope'" in result.output
