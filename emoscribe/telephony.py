"""A telephone channel for augmentation and evaluation: 8 kHz band limit, G.711, packet loss, back to 16 kHz.

Models trained on wideband studio speech meet narrowband, companded, lossy audio in the daemon's RTP legs; running
the training and test audio through the same channel makes the gap measurable and trainable.

Lost packets are concealed by repeating the last received packet under a linear fade that reaches silence
``FADE_MS`` into the loss (loosely after G.711 Appendix I, which also mutes 60 ms into a loss): short gaps keep
their sound, long ones go quiet rather than buzz. A loss before any packet arrived is silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr

from emoscribe.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

RATE = 16_000
CHANNEL_RATE = 8_000
FADE_MS = 60
"""How far into a run of lost packets the repeated audio fades to silence."""

Codec = Literal["ulaw", "alaw", "none"]
_CODECS = {"ulaw": (ulaw_encode, ulaw_decode), "alaw": (alaw_encode, alaw_decode)}


def telephone(
    samples_16k: np.ndarray,
    codec: Codec = "ulaw",
    loss: float = 0.0,
    rng: np.random.Generator | None = None,
    packet_ms: int = 20,
    mean_burst: float | None = None,
) -> np.ndarray:
    """``samples_16k`` (mono, full scale 1.0) as heard at the far end of a G.711 call, at 16 kHz, same length.

    ``codec="none"`` only band-limits. ``loss`` is the long-run share of ``packet_ms`` packets lost; losses are
    independent unless ``mean_burst`` (mean run of consecutive lost packets, >= 1) selects a Gilbert two-state
    model. Without loss the result is a deterministic function of the input; with loss, ``rng`` is required.
    """
    x = np.asarray(samples_16k)
    if x.ndim != 1:
        raise ValueError(f"telephone() takes mono 1-D audio, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"telephone() takes float audio (full scale 1.0), got {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("telephone() input contains NaN or infinite samples")
    if codec not in ("ulaw", "alaw", "none"):
        raise ValueError(f"unknown codec {codec!r}; expected 'ulaw', 'alaw' or 'none'")
    if not 0.0 <= loss < 1.0:
        raise ValueError(f"loss must be in [0, 1), got {loss}")
    if loss > 0 and rng is None:
        raise ValueError("packet loss is random: pass rng (a numpy Generator) so that it is reproducible")
    if packet_ms < 1:
        raise ValueError(f"packet_ms must be positive, got {packet_ms}")
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    if x.size == 0:
        return np.zeros(0, dtype=dtype)

    narrow = soxr.resample(x.astype(np.float64), RATE, CHANNEL_RATE)
    if codec != "none":
        encode, decode = _CODECS[codec]
        pcm = np.clip(np.round(narrow * 32768.0), -32768, 32767).astype(np.int16)
        narrow = decode(encode(pcm)) / 32768.0
    if loss > 0:
        packet = packet_ms * CHANNEL_RATE // 1000
        lost = packet_loss(-(-narrow.size // packet), loss, rng, mean_burst)
        narrow = conceal(narrow, lost, packet)
    wide = soxr.resample(narrow, CHANNEL_RATE, RATE)
    out = np.zeros(x.size, dtype=dtype)
    out[: min(x.size, wide.size)] = wide[: x.size]
    return out


def packet_loss(
    n_packets: int, loss: float, rng: np.random.Generator, mean_burst: float | None = None
) -> np.ndarray:
    """Which of ``n_packets`` are lost: independent with probability ``loss``, or Gilbert bursts.

    The Gilbert chain leaves a loss run with probability ``1 / mean_burst`` per packet and enters one with the
    probability that makes the long-run loss rate ``loss``; the first packet starts in the stationary state.
    """
    draws = rng.random(n_packets)
    if mean_burst is None:
        return draws < loss
    recover = 1.0 / mean_burst
    enter = loss * recover / (1.0 - loss)
    if mean_burst < 1.0 or enter > 1.0:
        raise ValueError(
            f"no Gilbert channel has loss {loss} with mean burst {mean_burst} packets "
            f"(the mean burst must be >= 1 and >= loss / (1 - loss))"
        )
    lost = np.empty(n_packets, dtype=bool)
    state = False
    for i, draw in enumerate(draws):
        state = draw < (loss if i == 0 else 1.0 - recover if state else enter)
        lost[i] = state
    return lost


def conceal(narrow: np.ndarray, lost: np.ndarray, packet: int) -> np.ndarray:
    """8 kHz audio with each ``lost`` packet replaced by the last received one, faded out (see module doc)."""
    n = narrow.size
    frames = np.zeros((lost.size, packet))
    frames.reshape(-1)[:n] = narrow
    index = np.arange(lost.size)
    last = np.maximum.accumulate(np.where(lost, -1, index))
    source = frames[np.maximum(last, 0)] * (last >= 0)[:, None]
    into_loss = (index - last - 1)[:, None] * packet + np.arange(packet)
    fade = np.clip(1.0 - into_loss / (FADE_MS * CHANNEL_RATE / 1000), 0.0, 1.0)
    frames[lost] = (source * fade)[lost]
    return frames.reshape(-1)[:n]


@dataclass(frozen=True, slots=True)
class TelephoneAugmenter:
    """Random telephone channels for training: a codec drawn by weight, then a loss rate drawn uniformly.

    The weights are relative (``ulaw``, ``alaw``, ``band_limit`` = 8 kHz without a codec); ``loss`` is the
    range of the packet-loss rate and ``mean_burst`` the Gilbert burst length (``None``: independent losses).
    """

    ulaw: float = 0.5
    alaw: float = 0.3
    band_limit: float = 0.2
    loss: tuple[float, float] = (0.0, 0.1)
    mean_burst: float | None = 2.0
    packet_ms: int = 20

    def __post_init__(self) -> None:
        weights = (self.ulaw, self.alaw, self.band_limit)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"codec weights must be non-negative with a positive sum, got {weights}")
        low, high = self.loss
        if not 0.0 <= low <= high < 1.0:
            raise ValueError(f"loss range must satisfy 0 <= low <= high < 1, got {self.loss}")
        if self.mean_burst is not None and self.mean_burst < max(1.0, high / (1.0 - high)):
            raise ValueError(f"mean_burst must be >= 1 and >= loss / (1 - loss), got {self.mean_burst}")

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        weights = np.array([self.ulaw, self.alaw, self.band_limit])
        codec: Codec = ("ulaw", "alaw", "none")[rng.choice(3, p=weights / weights.sum())]
        loss = float(rng.uniform(*self.loss))
        return telephone(samples, codec, loss, rng, self.packet_ms, self.mean_burst)
