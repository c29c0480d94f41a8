"""``emoscribe eval``: a built bundle scored on a labelled corpus as the daemon runs it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from fake_bundle import make_fake_bundle
from typer.testing import CliRunner

from emoscribe.cli import app
from emoscribe.corpus import parse_ravdess_name


def small_corpus(folder: Path, demo_dir: Path) -> Path:
    """The six demo clips (two speakers, three each) plus one clip labelled with an emotion no bundle has."""
    folder.mkdir()
    columns = ["path", "corpus", "speaker", "gender", "emotion", "intensity", "text", "language", "duration_s"]
    rows = []
    for path in sorted(demo_dir.glob("*.flac")):
        shutil.copy(path, folder / path.name)
        name = parse_ravdess_name(path.name)
        rows.append([path.name, "ravdess", f"ravdess-{name.actor:02d}", name.sex, name.emotion, "", "", "en", "3"])
    rows.append([rows[0][0], "other", "other-1", "male", "bored", "", "", "en", "3.0"])
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return folder


def test_eval_scores_each_clip_alone_and_as_its_speakers_stream(tmp_path: Path, demo_dir: Path) -> None:
    bundle = make_fake_bundle(tmp_path / "bundle", speaker=True)
    data = small_corpus(tmp_path / "data", demo_dir)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", "--data", str(data), "--bundle", str(bundle), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "clean  as stream" in result.output and "ulaw   clip alone" in result.output
    results = json.loads((out / "results.json").read_text())
    assert [c["channel"] for c in results["channels"]] == ["clean", "ulaw"]
    for channel in results["channels"]:
        assert channel["clips"] == 6 and channel["speakers"] == 2 and channel["skipped"] == {"bored": 1}
        assert sum(map(sum, channel["clip_alone"]["confusion"])) == 6
        by_reference = channel["as_stream_by_reference"]
        assert {k: v["n"] for k, v in by_reference.items()} == {"0": 2, "1-2": 4, "3-9": 0, "10+": 0}
    assert "as stream" in (out / "report.md").read_text()

    plain = make_fake_bundle(tmp_path / "plain")
    only = CliRunner().invoke(
        app, ["eval", "--data", str(data), "--bundle", str(plain), "--out", str(out), "--speakers", "ravdess-03"]
    )
    assert only.exit_code == 0, only.output
    channels = json.loads((out / "results.json").read_text())["channels"]
    assert channels[0]["clips"] == 3 and "as_stream" not in channels[0], "a plain bundle judges clips alone"
    nothing = CliRunner().invoke(app, ["eval", "--data", str(data), "--bundle", str(plain), "--corpus", "none"])
    assert nothing.exit_code != 0 and "no clip" in nothing.output


def test_eval_hears_one_emotion_streams(tmp_path: Path, demo_dir: Path) -> None:
    """Each speaker's clips of one emotion as a stream: every demo speaker has one clip per emotion, so every
    clip starts a stream and none is judged against another emotion's clips."""
    bundle = make_fake_bundle(tmp_path / "bundle", speaker=True)
    data = small_corpus(tmp_path / "data", demo_dir)
    out = tmp_path / "report"
    args = ["eval", "--data", str(data), "--bundle", str(bundle), "--out", str(out), "--one-emotion-streams"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    for channel in results["channels"]:
        assert channel["one_emotion_streams"] and channel["streams"] == 6 and channel["speakers"] == 2
        assert channel["as_stream_by_reference"]["0"]["n"] == 6, "no stream hears another emotion's clip"
        assert channel["as_stream"]["ser"] == channel["clip_alone"]["ser"], "alone in its stream: the same"
    assert "one-emotion streams" in (out / "report.md").read_text()
