"""The 8 to 16 kHz interpolator of the RTP source: exact on the input samples, flat in the telephone band, no
images, and the same output however the stream is cut into chunks."""

from __future__ import annotations

import numpy as np
import soxr

from emoscribe.daemon.upsampler import HALF_TAPS, Upsampler2x


def stream(samples: np.ndarray, sizes: list[int]) -> np.ndarray:
    upsampler, out, at = Upsampler2x(), [], 0
    for size in sizes:
        out.append(upsampler.resample_chunk(samples[at : at + size]))
        at += size
    out.append(upsampler.resample_chunk(samples[at:], last=True))
    return np.concatenate(out)


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_input_samples_pass_through_and_the_length_doubles() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, 8_000).astype(np.float32)
    y = stream(x, [160] * 49)
    assert y.size == 2 * x.size
    np.testing.assert_array_equal(y[0::2], x)


def test_chunking_does_not_change_the_output() -> None:
    x = np.random.default_rng(1).uniform(-1, 1, 4_000).astype(np.float32)
    whole = stream(x, [])
    sizes = [int(s) for s in np.random.default_rng(2).integers(0, 300, size=30)]
    np.testing.assert_allclose(stream(x, sizes), whole, atol=1e-6)
    np.testing.assert_allclose(stream(x, [1] * 200), whole, atol=1e-6)


def test_in_band_tones_are_rebuilt_and_their_images_are_gone() -> None:
    for hz in (200.0, 1000.0, 3000.0, 3400.0):
        y = stream(tone(hz, 1.0, 8_000), [160] * 49)
        truth = tone(hz, 1.0, 16_000)
        inner = slice(4 * HALF_TAPS, -4 * HALF_TAPS)  # away from the zero-padded edges
        error = np.sqrt(np.mean((y[inner] - truth[inner]) ** 2)) / np.sqrt(np.mean(truth[inner] ** 2))
        assert 20 * np.log10(error) < -90, (hz, error)
        spectrum = np.abs(np.fft.rfft(y[inner] * np.hanning(y[inner].size)))
        freqs = np.fft.rfftfreq(y[inner].size, 1 / 16_000)
        image = spectrum[freqs >= 4_400].max() / spectrum.max()
        assert 20 * np.log10(image) < -95, (hz, image)


def test_it_agrees_with_soxr_on_speech_band_noise() -> None:
    rng = np.random.default_rng(3)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(16_000)) * (np.fft.rfftfreq(16_000, 1 / 8000) < 3_400))
    x = (0.3 * noise / np.abs(noise).max()).astype(np.float32)
    ours = stream(x, [160] * 99)
    reference = soxr.resample(x, 8_000, 16_000, quality="VHQ")
    inner = slice(400, -400)
    error = np.sqrt(np.mean((ours[inner] - reference[inner]) ** 2) / np.mean(reference[inner] ** 2))
    assert 20 * np.log10(error) < -90, error
