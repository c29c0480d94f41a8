"""The telephone channel: band limit, codec noise, packet loss statistics, determinism and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from emoscribe.telephony import FADE_MS, TelephoneAugmenter, conceal, packet_loss, telephone

RATE = 16_000


def _noise(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.1, int(seconds * RATE))


def _energy_above(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    return float(spectrum[np.fft.rfftfreq(x.size, 1 / RATE) > hz].sum())


@pytest.mark.parametrize("codec", ["ulaw", "alaw", "none"])
def test_band_limited_to_4_khz(codec: str) -> None:
    x = _noise()
    drop_db = 10 * np.log10(_energy_above(telephone(x, codec), 4000) / _energy_above(x, 4000))
    assert drop_db < -40


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_codec_snr_of_a_speech_level_sine(codec: str) -> None:
    t = np.arange(2 * RATE) / RATE
    x = 0.1 * np.sin(2 * np.pi * 440 * t)  # -23 dBFS RMS
    reference = telephone(x, "none")
    snr = 10 * np.log10(np.sum(reference**2) / np.sum((telephone(x, codec) - reference) ** 2))
    assert 30 < snr < 45  # G.711 gives about 38 dB at this level


@pytest.mark.parametrize("mean_burst", [None, 3.0])
def test_loss_rate_and_bursts(mean_burst: float | None) -> None:
    lost = packet_loss(200_000, 0.1, np.random.default_rng(1), mean_burst)
    assert lost.mean() == pytest.approx(0.1, abs=0.005)
    starts = np.flatnonzero(np.diff(lost.astype(np.int8)) == 1)
    assert lost.sum() / starts.size == pytest.approx(mean_burst or 1 / 0.9, rel=0.05)


def test_impossible_burst_is_an_error() -> None:
    with pytest.raises(ValueError, match="Gilbert"):
        packet_loss(10, 0.6, np.random.default_rng(0), mean_burst=1.0)


def test_concealment_repeats_the_last_packet_then_fades_to_silence() -> None:
    packet = 160
    narrow = np.arange(1, 6 * packet + 1, dtype=float)
    lost = np.array([True, False, True, True, True, False])
    out = conceal(narrow, lost, packet)
    assert np.all(out[:packet] == 0)  # nothing received yet
    assert np.array_equal(out[packet : 2 * packet], narrow[packet : 2 * packet])
    fade = 1 - np.arange(3 * packet) / (FADE_MS * 8)
    repeated = np.tile(narrow[packet : 2 * packet], 3) * np.clip(fade, 0, 1)
    assert np.allclose(out[2 * packet : 5 * packet], repeated)
    assert np.all(out[int(2 * packet + FADE_MS * 8) : 5 * packet] == 0)
    assert np.array_equal(out[5 * packet :], narrow[5 * packet :])


def test_lost_packets_reach_the_output() -> None:
    x = 0.3 * np.sin(2 * np.pi * 300 * np.arange(4 * RATE) / RATE)
    y = telephone(x, "none", loss=0.5, rng=np.random.default_rng(2), mean_burst=10.0)
    quiet = np.abs(y.reshape(-1, 320)).max(axis=1) < 1e-3  # 20 ms windows silenced by long losses
    assert 0.05 < quiet.mean() < 0.6


def test_deterministic() -> None:
    x = _noise(0.5)
    assert np.array_equal(telephone(x), telephone(x))
    assert np.array_equal(telephone(x), telephone(x, rng=np.random.default_rng(5)))
    lossy = [telephone(x, loss=0.2, rng=np.random.default_rng(seed)) for seed in (7, 7, 8)]
    assert np.array_equal(lossy[0], lossy[1])
    assert not np.array_equal(lossy[0], lossy[2])
    augment = TelephoneAugmenter()
    assert np.array_equal(augment(x, np.random.default_rng(3)), augment(x, np.random.default_rng(3)))


@pytest.mark.parametrize("n", [1, 3, 159, 16_001])
def test_length_and_dtype_preserved(n: int) -> None:
    x = _noise(n / RATE).astype(np.float32)
    for y in (
        telephone(x),
        telephone(x, "alaw", 0.3, np.random.default_rng(0)),
        TelephoneAugmenter()(x, np.random.default_rng(0)),
    ):
        assert y.shape == x.shape
        assert y.dtype == np.float32
    assert telephone(np.zeros(0)).shape == (0,)


def test_silence_stays_silent() -> None:
    silence = np.zeros(RATE)
    assert not telephone(silence, "ulaw").any()
    assert not telephone(silence, "none", 0.3, np.random.default_rng(0)).any()
    assert np.abs(telephone(silence, "alaw")).max() < 4e-4  # A-law has no zero: idle is +8 LSB


@pytest.mark.parametrize(
    ("samples", "kwargs", "match"),
    [
        (np.array([0.0, np.nan, 0.0]), {}, "NaN"),
        (np.array([0.0, np.inf]), {}, "NaN"),
        (np.zeros((2, 100)), {}, "1-D"),
        (np.zeros(100, dtype=np.int16), {}, "float"),
        (np.zeros(100), {"codec": "gsm"}, "codec"),
        (np.zeros(100), {"loss": 1.0, "rng": np.random.default_rng(0)}, "loss"),
        (np.zeros(100), {"loss": 0.1}, "rng"),
        (np.zeros(100), {"packet_ms": 0}, "packet_ms"),
    ],
)
def test_bad_input(samples: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        telephone(samples, **kwargs)


def test_augmenter_checks_its_config() -> None:
    with pytest.raises(ValueError, match="weights"):
        TelephoneAugmenter(ulaw=0, alaw=0, band_limit=0)
    with pytest.raises(ValueError, match="loss range"):
        TelephoneAugmenter(loss=(0.2, 0.1))
    with pytest.raises(ValueError, match="mean_burst"):
        TelephoneAugmenter(mean_burst=0.5)
