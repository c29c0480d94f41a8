"""CPU cost of transcripts per leg-second: what turning ``[asr]`` on adds to ``cpu_per_leg.py``'s figures.

Usage: python benchmarks/asr_cost.py [--models tiny.en,base] [--repeat 3]

The leg is the benchmarks' call (the demo sentences with ``calls.py``'s 1.5 s pauses), heard as a microphone
(16 kHz) and as an RTP leg (through 8 kHz mu-law, ``emoscribe.telephony``).
Each sentence, with the segmenter's 300 ms pre-roll and 500 ms hangover, is one utterance, and all of them go
through the daemon's own ASR path (:class:`emoscribe.daemon.asr.AsrWorker`, one thread, the model int8 with one
CPU thread, greedy). The figure is process CPU time (every thread: the worker's and CTranslate2's) over the
call's length: CPU milliseconds per leg-second, and the legs one core transcribes (1000 / that); the median of
``--repeat`` passes after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime

import numpy as np
from calls import PAUSE_S
from machine import describe_machine

from emoscribe.audio import load_audio
from emoscribe.daemon.asr import AsrWorker, Done, Job
from emoscribe.daemon.transcriber import Transcriber
from emoscribe.demo import demo_clips
from emoscribe.telephony import telephone

RATE = 16_000
PRE_ROLL_S, HANGOVER_S = 0.3, 0.5


def leg_audio() -> tuple[dict[str, np.ndarray], list[tuple[float, float]]]:
    """The call at 16 kHz per channel (``mic``: wideband; ``rtp``: through 8 kHz mu-law) and each sentence's
    (start, end) in seconds."""
    pause = np.zeros(round(PAUSE_S * RATE))
    pieces, spans, at = [pause], [], PAUSE_S
    for path in demo_clips():
        sentence = load_audio(path)[0]
        spans.append((at, at + sentence.size / RATE))
        pieces += [sentence, pause]
        at += sentence.size / RATE + PAUSE_S
    call = np.concatenate(pieces)
    return {"mic": call, "rtp": telephone(call, "ulaw")}, spans


def utterances(audio: np.ndarray, spans: list[tuple[float, float]]) -> list[np.ndarray]:
    """Each sentence as the segmenter closes it: from pre-roll before its start to hangover after its end."""
    return [
        audio[max(round((start - PRE_ROLL_S) * RATE), 0) : round((end + HANGOVER_S) * RATE)]
        for start, end in spans
    ]


def one_pass(transcriber: Transcriber, pieces: list[np.ndarray]) -> float:
    """Process CPU seconds to transcribe ``pieces`` through the daemon's ASR worker."""
    finished = threading.Semaphore(0)

    def done(_: Done) -> None:
        finished.release()

    worker = AsrWorker(transcriber, len(pieces), done)
    worker.start()
    began = time.process_time()
    for index, samples in enumerate(pieces):
        assert worker.submit(Job("leg", index, 0.0, samples.size / RATE, samples, time.perf_counter()))
    for _ in pieces:
        finished.acquire()
    spent = time.process_time() - began
    worker.stop(5.0)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    legs, spans = leg_audio()
    print(f"{describe_machine()}, {datetime.now(UTC):%Y-%m-%d}: python {' '.join(sys.argv)}")
    print("| model | leg | call s | speech share | CPU ms per leg-second (median, range) | legs per core |")
    print("|---|---|---|---|---|---|")
    for model in args.models.split(","):
        transcriber = Transcriber(model, threads=1)
        transcriber.warm_up()
        for channel, audio in legs.items():
            pieces = utterances(audio, spans)
            call_s = audio.size / RATE
            costs = [1000 * one_pass(transcriber, pieces) / call_s for _ in range(args.repeat)]
            share = sum(p.size for p in pieces) / audio.size
            median = statistics.median(costs)
            print(
                f"| {model} | {channel} | {call_s:.1f} | {share:.0%} | {median:.0f} "
                f"({min(costs):.0f}-{max(costs):.0f}) | {1000 / median:.1f} |"
            )


if __name__ == "__main__":
    main()
