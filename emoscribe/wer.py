"""Word error rate: how a transcript scores against known text, for the ASR benchmark and tests.

Both texts are lower-cased and stripped of punctuation (an apostrophe inside a word stays), so "Kids are talking
by the door." and "kids are talking by the door" agree; errors are the word-level edit distance (substitutions,
insertions, deletions) over the reference's word count.
"""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def words(text: str) -> list[str]:
    return [word.strip("'") for word in _NOT_WORD.sub(" ", text.lower()).split() if word.strip("'")]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words): sum both over a corpus for its word error rate."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, expected in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, heard in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (expected != heard))
    return row[-1], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    edits, count = word_errors(reference, hypothesis)
    return edits / max(count, 1)
