"""Word error rate and real-time factor of the daemon's transcripts, on speech whose text is known.

Usage: python benchmarks/asr_wer.py [--data DIR] [--per-corpus 40] [--models tiny.en,base] [--language auto]
       [--seed 0] [--json FILE]

Sets: RAVDESS (statement from file-name field 5: 01 "Kids are talking by the door", 02 "Dogs are sitting by the
door"), TESS ("Say the word X", X from the file name), and espeak-ng sentences of a call (when espeak-ng is on
the PATH); ``--per-corpus`` clips of each corpus drawn with ``--seed``. Every clip is heard clean and through
8 kHz mu-law (``emoscribe.telephony``), each on its own, by :class:`emoscribe.daemon.transcriber.Transcriber`
as the daemon configures it (int8, greedy, one CPU thread, language ``--language``). WER is the corpus-level
word edit distance over reference words (``emoscribe.wer``); the real-time factor per core is the process CPU
time over the audio seconds (one thread: CPU seconds per second of speech on one core). Corpus audio is read
in place, never copied.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile as sf
from machine import describe_machine

from emoscribe.audio import load_audio, resample
from emoscribe.corpus import data_dir, parse_ravdess_name, read_manifest
from emoscribe.daemon.transcriber import Transcriber
from emoscribe.telephony import telephone
from emoscribe.wer import word_errors

RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
SENTENCES = (
    "Please hold the line while I check your account.",
    "I would like to cancel my subscription today.",
    "My internet has been down for three days.",
    "Can you tell me why my bill is so high this month?",
    "I have been waiting on the phone for an hour.",
    "Thank you for calling, how can I help you?",
    "I want to speak to your manager right now.",
    "The package never arrived at my address.",
    "Could you send me a new card by mail?",
    "Your payment was received yesterday afternoon.",
    "I am moving to a new apartment next week.",
    "This is the third time I have called about this problem.",
    "Let me transfer you to the billing department.",
    "Is there anything else I can help you with today?",
    "The technician will arrive between nine and noon.",
    "I never agreed to pay for this service.",
    "We can offer you a discount for the next six months.",
    "Please read me the number on the back of the card.",
    "I am very happy with the new plan.",
    "The connection keeps dropping every few minutes.",
)
"""A call center's sentences for espeak-ng: its voice is clearer than a caller's, so this set flatters."""


def ravdess_text(path: Path) -> str:
    return RAVDESS_STATEMENTS[parse_ravdess_name(path.name).statement]


def tess_text(path: Path) -> str:
    return f"Say the word {path.stem.split('_')[1]}"


def espeak(text: str) -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float64")
    return resample(samples, rate, 16_000)


def speech_sets(folder: Path | None, per_corpus: int, seed: int) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Per set, (16 kHz audio, the text spoken)."""
    sets: dict[str, list[tuple[np.ndarray, str]]] = {}
    if folder is not None:
        clips = read_manifest(folder)
        for corpus, truth in (("ravdess", ravdess_text), ("tess", tess_text)):
            chosen = random.Random(seed).sample([c for c in clips if c.corpus == corpus], per_corpus)
            sets[corpus] = [(load_audio(c.path)[0], truth(c.path)) for c in chosen]
    else:
        print("no corpus (set EMOSCRIBE_DATA or --data): RAVDESS and TESS left out", file=sys.stderr)
    if shutil.which("espeak-ng"):
        sets["espeak"] = [(espeak(text), text) for text in SENTENCES]
    else:
        print("espeak-ng not on the PATH: its sentences left out", file=sys.stderr)
    return sets


def measure(model: str, language: str, sets: dict[str, list[tuple[np.ndarray, str]]]) -> dict:
    transcriber = Transcriber(model, language=language, threads=1)
    transcriber.warm_up()
    results: dict = {"model": model, "language": language, "sets": {}}
    cpu = wall = audio = 0.0
    for name, clips in sets.items():
        for channel in ("clean", "mulaw"):
            edits = words = 0
            for samples, text in clips:
                heard_audio = samples if channel == "clean" else telephone(samples, "ulaw")
                began_cpu, began = time.process_time(), time.perf_counter()
                heard = transcriber.transcribe(heard_audio)
                cpu += time.process_time() - began_cpu
                wall += time.perf_counter() - began
                audio += samples.size / 16_000
                errors, count = word_errors(text, heard.text)
                edits, words = edits + errors, words + count
            results["sets"][f"{name}/{channel}"] = {"clips": len(clips), "words": words, "wer": edits / words}
    results |= {"audio_s": audio, "cpu_rtf_per_core": cpu / audio, "wall_rtf": wall / audio}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="corpus folder (default: $EMOSCRIBE_DATA)")
    parser.add_argument("--per-corpus", type=int, default=40)
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--language", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sets = speech_sets(args.data or data_dir(), args.per_corpus, args.seed)
    report = {
        "machine": describe_machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": " ".join(["python", *sys.argv]),
        "models": [measure(model, args.language, sets) for model in args.models.split(",")],
    }
    columns = [key for key in report["models"][0]["sets"]]
    print(f"{report['machine']}, {report['date']}: {report['command']}")
    print("| model | " + " | ".join(columns) + " | CPU RTF per core | wall RTF |")
    print("|---" * (len(columns) + 3) + "|")
    for result in report["models"]:
        wers = " | ".join(f"{100 * result['sets'][c]['wer']:.1f} %" for c in columns)
        print(f"| {result['model']} | {wers} | {result['cpu_rtf_per_core']:.3f} | {result['wall_rtf']:.3f} |")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
