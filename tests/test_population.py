"""Population normalisation in the daemon: moments shared by every stream, horizon, atomic persistence across
restarts, reset over the control socket, and the config section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_bundle import make_fake_bundle

from emoscribe.bundle import BundleError, load_bundle
from emoscribe.daemon.alerts import AlertTracker
from emoscribe.daemon.config import ConfigError, load_config
from emoscribe.daemon.control import QueryControl
from emoscribe.daemon.normalisation import open_normaliser
from emoscribe.daemon.population import PopulationNormaliser, PopulationSettings
from emoscribe.daemon.queries import QueryStore
from emoscribe.daemon.speaker_reference import SpeakerNormaliser
from emoscribe.daemon.switch import Switch


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_fake_bundle(tmp_path_factory.mktemp("population"), speaker=True, horizon=4))


def _stats(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.2, 0.05, size=(n, 1, 2)).astype(np.float32)


def test_every_stream_shares_the_moments_and_is_judged_against_them(bundle) -> None:
    population = PopulationNormaliser(bundle, PopulationSettings(enabled=Switch("true")))
    stats = _stats(3)
    _, logits, counts, _ = population.judge(["a", "b", "a"], stats)
    assert counts is None, "no speaker count is claimed"
    assert population.count == 3, "both streams fed one population"
    _, by_speaker, _, _ = SpeakerNormaliser(bundle).judge(["a", "b", "a"], stats)
    np.testing.assert_allclose(logits[0], by_speaker[0], rtol=1e-5, err_msg="nothing heard yet: the priors")
    assert not np.allclose(logits[1], by_speaker[1]), "stream b is judged against stream a's utterance"
    assert not np.allclose(logits[2], by_speaker[2]), "and a's second against both earlier ones"
    population.forget("a")
    assert population.count == 3, "a stream's end leaves the population as it was"


def test_the_moments_forget_past_the_horizon(bundle) -> None:
    population = PopulationNormaliser(bundle, PopulationSettings(enabled=Switch("true"), horizon=3))
    population.judge([None] * 10, _stats(10))
    assert population.count == 3


def test_moments_survive_a_restart_atomically_and_reset_forgets_them(bundle, tmp_path: Path) -> None:
    file = tmp_path / "state" / "population.npz"
    settings = PopulationSettings(enabled=Switch("true"), file=str(file), save_every=4)
    first = PopulationNormaliser(bundle, settings)
    first.judge(["a"] * 3, _stats(3))
    assert not file.exists(), "written every save_every utterances"
    first.judge(["b"], _stats(1, seed=1))
    assert file.exists() and not list(file.parent.glob("*.tmp")), "written by renaming a complete file"
    first.judge(["b"], _stats(1, seed=2))
    first.save()
    second = PopulationNormaliser(bundle, settings)
    assert second.count == 5
    np.testing.assert_allclose(second.moments.mean, first.moments.mean)
    np.testing.assert_allclose(second.moments.var, first.moments.var)
    control = QueryControl(QueryStore(None), AlertTracker(), set, second.reset)
    assert control.handle({"op": "reset_population"}) == {"ok": True, "dropped": 5}
    assert second.count == 0 and not file.exists()
    assert PopulationNormaliser(bundle, settings).count == 0, "the reset persists"


def test_a_file_of_another_bundle_is_refused(bundle, tmp_path: Path) -> None:
    file = tmp_path / "population.npz"
    np.savez(file, count=3, mean=np.zeros((2, 5), np.float32), var=np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="another bundle"):
        PopulationNormaliser(bundle, PopulationSettings(enabled=Switch("true"), file=str(file)))


def test_reset_without_population_normalisation_is_an_error_reply() -> None:
    reply = QueryControl(QueryStore(None), AlertTracker(), set).handle({"op": "reset_population"})
    assert reply["ok"] is False and "population" in reply["error"]


def test_the_config_section_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text('[population]\nenabled = true\nfile = "/var/lib/emoscribe/population.npz"\nhorizon = 300\n')
    config = load_config(path, environ={})
    assert config.population.enabled == "true" and config.population.horizon == 300
    path.write_text("[population]\nhorizn = 300\n")
    with pytest.raises(ConfigError, match="horizn"):
        load_config(path, environ={})
    path.write_text("[population]\nhorizon = 0\n")
    with pytest.raises(ConfigError, match="horizon"):
        load_config(path, environ={})


def test_a_bundle_without_speaker_graph_cannot_normalise_by_population(tmp_path: Path) -> None:
    plain = load_bundle(make_fake_bundle(tmp_path / "plain"))
    with pytest.raises(ValueError, match=r"speaker\.onnx"):
        PopulationNormaliser(plain, PopulationSettings(enabled=Switch("true")))


@pytest.mark.parametrize(
    ("trained_for", "enabled", "speaker_normalisation", "expected"),
    [
        ("population", "auto", True, PopulationNormaliser),
        ("population", "auto", False, PopulationNormaliser),
        ("speaker", "auto", True, SpeakerNormaliser),
        ("speaker", "auto", False, type(None)),
        ("speaker", "true", True, PopulationNormaliser),
        ("population", "false", True, SpeakerNormaliser),
        ("population", "false", False, type(None)),
    ],
)
def test_the_daemon_judges_against_what_the_bundle_was_trained_for_unless_told_otherwise(
    tmp_path: Path, trained_for: str, enabled: str, speaker_normalisation: bool, expected: type
) -> None:
    bundle = load_bundle(make_fake_bundle(tmp_path / "b", speaker=True, reference=trained_for))
    assert bundle.reference == trained_for
    settings = PopulationSettings(enabled=Switch(enabled))
    assert type(open_normaliser(bundle, speaker_normalisation, settings)) is expected


def test_a_bundle_naming_an_unknown_reference_is_refused(tmp_path: Path) -> None:
    folder = make_fake_bundle(tmp_path / "b", speaker=True, reference="cohort")
    with pytest.raises(BundleError, match="reference"):
        load_bundle(folder)


def test_population_is_auto_by_default_and_typos_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text("")
    assert load_config(path, environ={}).population.enabled == "auto"
    path.write_text("[population]\nenabled = 'sometimes'\n")
    with pytest.raises(ConfigError, match="enabled"):
        load_config(path, environ={})
