"""The trainable parts on top of the frozen encoders: layer-weighted statistics pooling, projections, SER head.

They are small (a few hundred thousand parameters), which is what lets the repository carry trained weights
while the encoders come from pinned registry packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True, slots=True)
class HeadConfig:
    """Shapes and regularisation of the heads; stored beside their weights so a checkpoint rebuilds itself."""

    n_layers: int
    """Hidden states the encoder returns (embedding output + every block)."""
    d_audio: int
    d_text: int
    n_classes: int
    d_joint: int = 256
    d_hidden: int = 512
    dropout: float = 0.3
    speaker_normalisation: bool = False
    """Standardise the statistics by the speaker's own (see :class:`SpeakerReference`) before pooling."""
    affect: bool = False
    """Also predict valence and arousal (-1…1) with their log-variances (see :class:`AudioHead`)."""

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


def masked_statistics(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation over valid frames: ``(batch, T, d)`` and ``(batch, T)`` → ``(batch, 2d)``."""
    weight = mask.to(hidden.dtype).unsqueeze(-1)
    count = weight.sum(dim=1).clamp_min(1.0)
    mean = (hidden * weight).sum(dim=1) / count
    var = (((hidden - mean.unsqueeze(1)) ** 2) * weight).sum(dim=1) / count
    return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


class AttentiveStatistics(nn.Module):
    """Attention-weighted mean and standard deviation over valid frames (Okabe et al., 2018).

    The scorer's output layer starts at zero, i.e. uniform weights: exactly ``masked_statistics``, so a model
    that learns it starts from the plain statistics it replaces.
    """

    def __init__(self, d_model: int, d_attention: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, d_attention), nn.Tanh(), nn.Linear(d_attention, 1))
        nn.init.zeros_(self.score[2].weight)
        nn.init.zeros_(self.score[2].bias)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(hidden).squeeze(-1).masked_fill(~mask, float("-inf"))
        weight = torch.softmax(logits, dim=1).unsqueeze(-1)
        mean = (hidden * weight).sum(dim=1)
        var = (((hidden - mean.unsqueeze(1)) ** 2) * weight).sum(dim=1)
        return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


def layer_statistics(
    hidden_states: Sequence[torch.Tensor], mask: torch.Tensor, last_pool: AttentiveStatistics | None = None
) -> torch.Tensor:
    """Statistics of every hidden state: ``(batch, n_layers, 2d)``; what the training cache stores per clip.
    With ``last_pool``, the last state's come from that trained attentive pooling instead."""
    stats = [masked_statistics(h, mask) for h in hidden_states[:-1]]
    last = hidden_states[-1]
    stats.append(masked_statistics(last, mask) if last_pool is None else last_pool(last, mask))
    return torch.stack(stats, dim=1)


Reference = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""A speaker reference per row: utterance count ``(batch,)``, mean and variance ``(batch, n_layers, 2d)`` of the
statistics of the speaker's earlier utterances (count 0: none known yet)."""


class SpeakerReference(nn.Module):
    """Standardises each clip's statistics by its speaker's: the mean and variance of the speaker's earlier
    utterances, shrunk toward population priors by ``prior_clips`` pseudo-utterances.

    What stays after subtracting the speaker's usual voice is how this utterance departs from it, which is what
    emotion is; a voice's pitch and timbre no longer pose as emotion. With no reference the priors alone apply
    (the clip is judged against the population), so one head serves the first utterance of a call and the
    hundredth. The priors are the training population's mean and its average within-speaker variance.
    """

    def __init__(self, n_layers: int, width: int) -> None:
        super().__init__()
        # set from the training data by ``emoscribe.training.references.fit_priors``
        self.register_buffer("prior_mean", torch.zeros(n_layers, width))
        self.register_buffer("prior_var", torch.ones(n_layers, width))
        self.register_buffer("prior_clips", torch.tensor(1.0))

    def forward(self, layer_stats: torch.Tensor, reference: Reference | None = None) -> torch.Tensor:
        if reference is None:
            mean, var = self.prior_mean, self.prior_var
        else:
            count, known_mean, known_var = reference
            n = count.to(layer_stats.dtype).view(-1, 1, 1)
            total = n + self.prior_clips
            mean = (n * known_mean + self.prior_clips * self.prior_mean) / total
            var = (n * known_var + self.prior_clips * self.prior_var) / total
        return (layer_stats - mean) * torch.rsqrt(var + 1e-6)


class AudioHead(nn.Module):
    """Per-layer statistics → softmax-weighted sum over layers → normalised stats → SER logits and joint embedding.

    Weighting layers lets the model draw on the middle layers, where emotion and prosody live in speech
    encoders, rather than only on the last one, which Whisper tunes for transcription.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        width = 2 * config.d_audio
        self.layer_logits = nn.Parameter(torch.zeros(config.n_layers))
        self.reference = SpeakerReference(config.n_layers, width) if config.speaker_normalisation else None
        self.norm = nn.LayerNorm(width)
        self.body = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(width, config.d_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
        )
        self.classifier = nn.Linear(config.d_hidden, config.n_classes)
        self.projection = nn.Linear(config.d_hidden, config.d_joint)
        self.affect = nn.Linear(config.d_hidden, 4) if config.affect else None
        """``(valence, arousal)`` before tanh, then their log-variances: how sure the head is of each."""
        self.register_buffer("temperature", torch.tensor(1.0), persistent=False)
        """Divides the SER logits, so the posteriors are calibrated; fitted after training, kept in the parts'
        ``parts.json`` (``ser_temperature``), not in the weights."""

    def forward(
        self, layer_stats: torch.Tensor, reference: Reference | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, n_layers, 2d)`` → (L2-normalised joint embedding, SER logits); a head without speaker
        normalisation ignores ``reference``."""
        return self.read(self.hidden(layer_stats, reference))

    def read(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint embedding and SER logits of the shared representation."""
        return F.normalize(self.projection(hidden), dim=-1), self.classifier(hidden) / self.temperature

    def hidden(self, layer_stats: torch.Tensor, reference: Reference | None = None) -> torch.Tensor:
        """The shared representation every output reads."""
        if self.reference is not None:
            layer_stats = self.reference(layer_stats, reference)
        weights = torch.softmax(self.layer_logits, dim=0)
        return self.body(self.norm(torch.einsum("bld,l->bd", layer_stats, weights)))

    def affect_outputs(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(valence, arousal)`` in -1…1 and their log-variances, each ``(batch, 2)``; needs ``affect``."""
        if self.affect is None:
            raise ValueError("these heads were trained without an arousal/valence output")
        out = self.affect(hidden)
        return torch.tanh(out[:, :2]), out[:, 2:].clamp(-9.0, 3.0)


class TextHead(nn.Module):
    """Frozen sentence embedding → joint space."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.projection = nn.Sequential(
            nn.Linear(config.d_text, config.d_hidden), nn.GELU(), nn.Linear(config.d_hidden, config.d_joint)
        )

    def forward(self, sentence_embedding: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(sentence_embedding), dim=-1)


class EmotionHeads(nn.Module):
    """Both heads and the learned temperature of the contrastive loss (CLAP: log-scale, initialised at 1/0.07)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.audio = AudioHead(config)
        self.text = TextHead(config)
        self.logit_scale = nn.Parameter(torch.tensor(2.6593))

    def similarity(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities ``(n_audio, n_text)``; the scale is capped at 100 as in CLIP."""
        return self.logit_scale.clamp(max=4.6052).exp() * audio @ text.T
