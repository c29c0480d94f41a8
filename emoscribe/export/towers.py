"""The two exported graphs: waveform → (embedding, SER logits), and token ids → embedding in the same space."""

from __future__ import annotations

import torch
from torch import nn

from emoscribe.training.heads import AttentiveStatistics, AudioHead, TextHead, layer_statistics
from emoscribe.training.text import SentenceEncoder
from emoscribe.training.whisper import LogMel, WhisperAudioEncoder


class AudioTower(nn.Module):
    """16 kHz waveform batch ``(B, S)`` with sample ``lengths (B,)`` → L2-normalised embedding and SER logits.

    The log-mel front end is inside the graph, so the daemon feeds PCM and needs no feature code of its own;
    padded rows are masked end to end, so a batch gives each utterance what it would get alone. ``pool`` is the
    trained attentive pooling of the last layer, for heads trained with one.
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

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mel, frame_mask = self.logmel(waveform, lengths)
        hidden = self.encoder(mel, frame_mask)
        token_mask = frame_mask[:, ::2][:, : hidden[0].shape[1]]
        return self.head(layer_statistics(hidden, token_mask, self.pool))


class TextTower(nn.Module):
    """Token ids and attention mask → L2-normalised embedding in the joint space (for run-time queries)."""

    def __init__(self, sentence: SentenceEncoder, head: TextHead) -> None:
        super().__init__()
        self.sentence = sentence
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.sentence(input_ids, attention_mask))
