"""Bad input: each case is a clear AudioInputError or a defined result with None cues, never a crash."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import RATE, vowel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emoscribe.cues import CUE_NAMES, AudioInputError, Cues, extract_cues

VOICE_CUES = ("f0_mean_hz", "f0_median_hz", "jitter_local", "shimmer_local", "hnr_db", "speech_rate", "f1_mean_hz")


def _undefined_except_duration(cues: Cues) -> bool:
    skip = {"duration_s", "clipped_fraction", "dc_offset"}
    return all(getattr(cues, name) is None for name in CUE_NAMES if name not in skip)


def test_empty_array_is_refused() -> None:
    with pytest.raises(AudioInputError, match="no samples"):
        extract_cues(np.zeros(0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused_with_their_position(bad: float) -> None:
    x = vowel(150.0)
    x[4000] = bad
    with pytest.raises(AudioInputError, match=r"non-finite.*index 4000"):
        extract_cues(x)


def test_stereo_is_refused_with_a_hint() -> None:
    with pytest.raises(AudioInputError, match="mono"):
        extract_cues(np.stack([vowel(150.0), vowel(150.0)], axis=1))


def test_wrong_sample_rate_is_refused() -> None:
    with pytest.raises(AudioInputError, match="16000 Hz"):
        extract_cues(vowel(150.0, rate=8000), sample_rate=8000)


def test_non_numeric_dtype_is_refused() -> None:
    with pytest.raises(AudioInputError, match="dtype"):
        extract_cues(np.array(["a", "b"] * 8000))


@pytest.mark.parametrize("seconds", [0.001, 0.05, 0.099])
def test_shorter_than_100_ms_gives_none(seconds: float) -> None:
    cues = extract_cues(vowel(150.0, seconds=seconds))
    assert cues.duration_s == pytest.approx(seconds, abs=1 / RATE)
    assert _undefined_except_duration(cues)


def test_digital_silence_gives_none() -> None:
    cues = extract_cues(np.zeros(RATE))
    assert cues.duration_s == 1.0
    assert _undefined_except_duration(cues)


def test_faint_dither_is_silence() -> None:
    """Noise at the level of 16-bit dither is below the absolute floor: no speech, no rates."""
    cues = extract_cues(np.random.default_rng(0).normal(0, 1 / 32768, RATE))
    assert _undefined_except_duration(cues)


def test_unvoiced_noise_has_level_but_no_voice() -> None:
    cues = extract_cues(np.random.default_rng(1).normal(0, 0.1, RATE))
    assert cues.intensity_mean_db is not None
    for name in ("f0_mean_hz", "jitter_local", "speech_rate", "articulation_rate"):
        assert getattr(cues, name) is None, name


def test_int16_matches_float() -> None:
    x = vowel(150.0)
    as_int = np.round(x * 32767).astype(np.int16)
    a, b = extract_cues(x), extract_cues(as_int)
    assert b.f0_median_hz == pytest.approx(a.f0_median_hz, rel=1e-3)
    assert b.intensity_mean_db == pytest.approx(a.intensity_mean_db, abs=0.1)


def test_clipping_is_measured_and_cues_still_defined() -> None:
    x = np.clip(vowel(150.0, amplitude=1.0) * 4.0, -1.0, 1.0)
    cues = extract_cues(x)
    assert cues.clipped_fraction > 0.2
    assert cues.f0_median_hz == pytest.approx(150.0, rel=0.02)


def test_overrange_floats_count_as_clipped() -> None:
    cues = extract_cues(vowel(150.0, amplitude=3.0))
    assert cues.clipped_fraction > 0.1
    assert cues.intensity_mean_db < 95.0, "clipped to full scale, never beyond"


def test_dc_offset_is_reported_and_removed() -> None:
    x = vowel(150.0)
    shifted = extract_cues(x + 0.25)
    plain = extract_cues(x)
    assert shifted.dc_offset == pytest.approx(0.25, abs=1e-3)
    assert shifted.f0_median_hz == pytest.approx(plain.f0_median_hz, rel=0.01)
    assert shifted.intensity_mean_db == pytest.approx(plain.intensity_mean_db, abs=0.5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrays(
        dtype=st.sampled_from([np.float64, np.float32, np.int16]),
        shape=st.integers(0, 12_000),
        elements=None,
    )
)
def test_no_array_crashes_the_extractor(samples: np.ndarray) -> None:
    try:
        cues = extract_cues(samples)
    except AudioInputError:
        return
    for name in CUE_NAMES:
        value = getattr(cues, name)
        assert value is None or math.isfinite(value), f"{name} = {value}"


@settings(max_examples=40, deadline=None)
@given(
    st.floats(60.0, 500.0),
    st.floats(0.001, 1.0),
    st.floats(0.15, 1.5),
    st.floats(-0.5, 0.5),
)
def test_any_vowel_gives_finite_cues(f0: float, amplitude: float, seconds: float, dc: float) -> None:
    cues = extract_cues(vowel(f0, seconds=seconds, amplitude=amplitude) + dc)
    for name in CUE_NAMES:
        value = getattr(cues, name)
        assert value is None or math.isfinite(value), f"{name} = {value}"
