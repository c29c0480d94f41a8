"""The two exported graphs: waveform → (embedding, SER logits), and token ids → embedding in the same space."""

from __future__ import annotations

import torch
from torch import nn

from emoscribe.training.heads import AttentiveStatistics, AudioHead, TextHead, layer_statistics
from emoscribe.training.text import SentenceEncoder
from emoscribe.training.whisper import LogMel, WhisperAudioEncoder


class AudioTower(nn.Module):
    """16 kHz waveform batch ``(B, S)`` with sample ``lengths (B,)`` → L2-normalised embedding and SER logits;
    for a speaker-normalising head also the per-layer statistics ``(B, n_layers, 2d)``, for :class:`SpeakerTower`,
    and for a head with an arousal/valence output that output last (see :func:`affect_output`).

    The log-mel front end is inside the graph, so the daemon feeds PCM and needs no feature code of its own;
    padded rows are masked end to end, so a batch gives each utterance what it would get alone. ``pool`` is the
    trained attentive pooling of the last layer, for heads trained with one. The embedding and logits judge the
    clip alone (against the population priors), which is what a caller without speaker history gets.
    """

    def __init__(
        self,
        logmel: LogMel,
        encoder: WhisperAudioEncoder,
        head: AudioHead,
        pool: AttentiveStatistics | None = None,
    ) -> None:
        super().__init__()
        self.logmel = logmel
        self.encoder = encoder
        self.head = head
        self.pool = pool

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mel, frame_mask = self.logmel(waveform, lengths)
        hidden = self.encoder(mel, frame_mask)
        token_mask = frame_mask[:, ::2][:, : hidden[0].shape[1]]
        stats = layer_statistics(hidden, token_mask, self.pool)
        outputs = self.head.hidden(stats)
        extra = (stats,) if self.head.reference is not None else ()
        return (*self.head.read(outputs), *extra, *affect_output(self.head, outputs))


def affect_output(head: AudioHead, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(valence, arousal, sd of valence, sd of arousal)`` as one ``(B, 4)`` output, or none for a head
    without it."""
    if head.affect is None:
        return ()
    mean, log_var = head.affect_outputs(hidden)
    return (torch.cat([mean, (0.5 * log_var).exp()], dim=1),)


class SpeakerTower(nn.Module):
    """Layer statistics and a speaker reference (earlier-utterance count, mean and variance of their statistics)
    → embedding and SER logits judged against that speaker: the daemon's second, tiny graph."""

    def __init__(self, head: AudioHead) -> None:
        super().__init__()
        if head.reference is None:
            raise ValueError("the audio head does not normalise by speaker")
        self.head = head

    def forward(
        self, layer_stats: torch.Tensor, count: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        hidden = self.head.hidden(layer_stats, (count, mean, var))
        return (*self.head.read(hidden), *affect_output(self.head, hidden))


class TextTower(nn.Module):
    """Token ids and attention mask → L2-normalised embedding in the joint space (for run-time queries)."""

    def __init__(self, sentence: SentenceEncoder, head: TextHead) -> None:
        super().__init__()
        self.sentence = sentence
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.sentence(input_ids, attention_mask))
