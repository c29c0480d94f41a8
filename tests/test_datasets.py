"""Corpus loaders on fake trees of each standard layout, and speaker-independent splits on the real manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoscribe.corpus import VALIDATION_SPEAKERS, data_dir
from emoscribe.datasets import (
    LayoutError,
    Utterance,
    from_manifest,
    leave_one_corpus_out,
    load_crema_d,
    load_emodb,
    load_iemocap,
    load_meld,
    load_ravdess,
    load_tess,
    speaker_folds,
    split_by_speakers,
)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_ravdess(tmp_path: Path) -> None:
    _touch(tmp_path, "Actor_01/03-01-05-02-01-01-01.wav", "Actor_12/03-01-08-01-02-02-12.wav")
    _touch(tmp_path, "Actor_01/03-02-05-02-01-01-01.wav")  # song: skipped
    first, second = load_ravdess(tmp_path)
    assert first == Utterance(
        tmp_path / "Actor_01/03-01-05-02-01-01-01.wav",
        "ravdess",
        "ravdess-01",
        "male",
        "angry",
        "Kids are talking by the door",
        "strong",
    )
    assert (second.speaker, second.sex, second.emotion, second.text) == (
        "ravdess-12",
        "female",
        "surprised",
        "Dogs are sitting by the door",
    )
    _touch(tmp_path, "Actor_02/notes.wav")
    with pytest.raises(LayoutError, match=r"Actor_XX/03-01-EE-II-SS-RR-AA\.wav"):
        load_ravdess(tmp_path)


def test_tess(tmp_path: Path) -> None:
    _touch(tmp_path, "OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_gaze_ps.wav")
    utterances = load_tess(tmp_path)
    assert [(u.speaker, u.emotion, u.text, u.sex) for u in utterances] == [
        ("tess-OAF", "angry", "Say the word back", "female"),
        ("tess-YAF", "surprised", "Say the word gaze", "female"),
    ]


def test_crema_d(tmp_path: Path) -> None:
    _touch(tmp_path, "AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1002_IEO_HAP_HI.wav")
    first, second = load_crema_d(tmp_path)
    assert (first.speaker, first.sex, first.emotion, first.text, first.intensity) == (
        "crema-d-1001",
        None,
        "angry",
        "Don't forget a jacket",
        None,
    )
    assert (second.emotion, second.intensity) == ("happy", "high")
    (tmp_path / "VideoDemographics.csv").write_text(
        '"ActorID","Age","Sex","Race","Ethnicity"\n1001,51,"Male","Caucasian","Not Hispanic"\n'
        '1002,21,"Female","Caucasian","Not Hispanic"\n'
    )
    assert [u.sex for u in load_crema_d(tmp_path)] == ["male", "female"]


def test_emodb(tmp_path: Path) -> None:
    _touch(tmp_path, "wav/03a01Fa.wav", "wav/16b10Lb.wav")
    first, second = load_emodb(tmp_path)
    assert (first.speaker, first.sex, first.emotion, first.text) == (
        "emodb-03",
        "male",
        "happy",
        "Der Lappen liegt auf dem Eisschrank.",
    )
    assert (second.speaker, second.sex, second.emotion) == ("emodb-16", "female", "bored")
    _touch(tmp_path, "wav/99a01Fa.wav")
    with pytest.raises(LayoutError, match="EmoDB"):
        load_emodb(tmp_path)


def test_iemocap(tmp_path: Path) -> None:
    session = tmp_path / "Session1"
    labels = session / "dialog/EmoEvaluation/Ses01F_impro01.txt"
    labels.parent.mkdir(parents=True)
    labels.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]\n"
        "[12.0000 - 13.0000]\tSes01F_impro01_F002\txxx\t[2.0000, 3.5000, 3.5000]\n"
        "[14.0000 - 15.0000]\tSes01F_impro01_M003\texc\t[4.0000, 3.5000, 3.5000]\n"
    )
    transcript = session / "dialog/transcriptions/Ses01F_impro01.txt"
    transcript.parent.mkdir(parents=True)
    transcript.write_text("Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n")
    wavs = "sentences/wav/Ses01F_impro01"
    _touch(session, *(f"{wavs}/Ses01F_impro01_{t}.wav" for t in ("F000", "M001", "F002")))
    with pytest.warns(UserWarning, match="1 annotated clip"):  # M003 has no audio
        first, second = load_iemocap(tmp_path)
    assert (first.speaker, first.sex, first.emotion, first.text) == (
        "iemocap-Ses01F",
        "female",
        "neutral",
        "Excuse me.",
    )
    assert (second.speaker, second.sex, second.emotion, second.text) == (
        "iemocap-Ses01M",
        "male",
        "frustrated",
        None,
    )


def test_meld(tmp_path: Path) -> None:
    (tmp_path / "train_sent_emo.csv").write_text(
        "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
        '1,"Oh my God, he\'s lost it.",Monica,surprise,negative,0,0,8,21,"00:16:16,059","00:16:17,394"\n'
        '2,Hi.,Ross,joy,positive,0,1,8,21,"00:16:18,000","00:16:19,000"\n'
    )
    _touch(tmp_path, "audio/dia0_utt0.wav", "audio/dia0_utt1.wav")
    first, second = load_meld(tmp_path, tmp_path / "audio")
    assert (first.speaker, first.emotion, first.text, first.sex) == (
        "meld-Monica",
        "surprised",
        "Oh my God, he's lost it.",
        None,
    )
    assert (second.path.name, second.emotion) == ("dia0_utt1.wav", "happy")
    with pytest.raises(LayoutError, match=r"dev_sent_emo\.csv"):
        load_meld(tmp_path, tmp_path / "audio", split="dev")


@pytest.mark.parametrize("loader", [load_ravdess, load_tess, load_crema_d, load_emodb, load_iemocap])
def test_wrong_layout_names_what_was_expected(tmp_path: Path, loader) -> None:
    _touch(tmp_path, "somewhere/else.wav")
    with pytest.raises(LayoutError, match="expected"):
        loader(tmp_path)
    with pytest.raises(LayoutError, match="expected"):
        loader(tmp_path / "absent")


def _fake(speaker: str, sex: str | None, corpus: str = "c", emotion: str = "sad") -> Utterance:
    return Utterance(Path(f"{speaker}.wav"), corpus, speaker, sex, emotion)


def test_folds_balance_uneven_groups() -> None:
    people = [_fake(f"m{i}", "male") for i in range(7)] + [_fake(f"f{i}", "female") for i in range(5)]
    folds = speaker_folds([*people, _fake("u0", None)], n_folds=3, corpus="c")
    assert sorted(len(f) for f in folds) == [4, 4, 5]
    assert set().union(*folds) == {u.speaker for u in people} | {"u0"}
    with pytest.raises(ValueError, match="both"):
        speaker_folds([_fake("a", "male"), _fake("a", "female")], n_folds=1, corpus="c")
    with pytest.raises(ValueError, match="cannot make"):
        speaker_folds(people, n_folds=20, corpus="c")


@pytest.fixture(scope="module")
def manifest() -> list[Utterance]:
    folder = data_dir()
    if folder is None:
        pytest.skip("corpus not available: set EMOSCRIBE_DATA to the folder holding manifest.csv")
    return from_manifest(folder)


def test_manifest(manifest: list[Utterance]) -> None:
    assert len(manifest) == 4000
    train, validation = split_by_speakers(manifest)
    assert {u.speaker for u in validation} == VALIDATION_SPEAKERS
    assert not {u.speaker for u in train} & VALIDATION_SPEAKERS
    assert len(train) + len(validation) == 4000


def test_ravdess_folds(manifest: list[Utterance]) -> None:
    folds = speaker_folds(manifest, n_folds=5, corpus="ravdess")
    assert sum(len(f) for f in folds) == 20
    assert set().union(*folds) == {f"ravdess-{a:02d}" for a in range(1, 21)}
    sex = {u.speaker: u.sex for u in manifest}
    for fold in folds:
        assert sorted(sex[s] for s in fold) == ["female", "female", "male", "male"]
    assert folds[-1] == {"ravdess-17", "ravdess-18", "ravdess-19", "ravdess-20"}


def test_leave_one_corpus_out(manifest: list[Utterance]) -> None:
    train, test = leave_one_corpus_out(manifest, "tess")
    assert {u.corpus for u in train} == {"ravdess"} and {u.corpus for u in test} == {"tess"}
    shared = {"neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"}
    assert {u.emotion for u in train} == {u.emotion for u in test} == shared
    everything, _ = leave_one_corpus_out(manifest, "tess", shared_emotions_only=False)
    assert "calm" in {u.emotion for u in everything}


def test_loaders_agree_with_the_manifest(manifest: list[Utterance]) -> None:
    folder = data_dir()
    by_path = {u.path: u for u in manifest}
    for loaded in (load_ravdess(folder / "ravdess"), load_tess(folder / "tess")):
        assert loaded == [by_path[u.path] for u in loaded]
    assert len(loaded) + len(load_ravdess(folder / "ravdess")) == 4000
