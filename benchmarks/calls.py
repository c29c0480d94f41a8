"""The call every daemon benchmark plays: the demo sentences with pauses, as 8 kHz PCMU, one leg per offset."""

from __future__ import annotations

import numpy as np

from emoscribe.audio import load_audio, resample
from emoscribe.demo import demo_clips
from emoscribe.g711 import ulaw_encode

PAUSE_S = 1.5
PACKET_BYTES = 160
"""20 ms of 8 kHz PCMU."""


def call_script() -> tuple[bytes, np.ndarray]:
    """PCMU bytes of the demo sentences with 1.5 s pauses, and the script times (s) where each sentence ends."""
    pause = np.zeros(round(PAUSE_S * 8_000))
    parts, ends, length = [pause], [], pause.size
    for path in demo_clips():
        sentence = resample(load_audio(path)[0], 16_000, 8_000)
        parts += [sentence, pause]
        length += sentence.size
        ends.append(length / 8_000)
        length += pause.size
    pcm = np.round(np.concatenate(parts) * 32767).clip(-32768, 32767).astype(np.int16)
    return ulaw_encode(pcm).tobytes(), np.array(ends)


def leg_offsets(packets: int, legs: int) -> list[int]:
    """The script packet each leg starts at (as the load generator plays them), so that ends of speech spread
    out over time."""
    return [(leg * packets) // legs for leg in range(legs)]


def expected_utterances(script: bytes, ends: np.ndarray, legs: int, seconds: float) -> int:
    """Sentence ends the legs play in ``seconds``: each must arrive (a sentence cut at a leg's start or end can
    add one more, never fewer)."""
    packets = len(script) // PACKET_BYTES
    length = packets * 0.02
    total = 0
    for offset in leg_offsets(packets, legs):
        relative = (ends - offset * 0.02) % length
        total += int(np.maximum(0.0, np.ceil((seconds - relative) / length)).sum())
    return total
