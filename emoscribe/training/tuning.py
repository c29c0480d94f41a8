"""Partial fine-tuning: the top encoder blocks and/or attentive pooling of the top layer, trained after the heads.

The heads first converge on the cached statistics of the frozen encoder (``train_heads``); then the top
``unfreeze_layers`` blocks, copied from the encoder, run on cached frames of the layer below them and are
trained together with the heads at a small learning rate: their full weights, or low-rank adapters on them
(``adapter_rank``, see ``emoscribe.training.adapters``). The copied blocks, the zero-initialised adapters and
the zero-initialised attention start out computing exactly the frozen statistics, so the second stage starts
from the frozen solution.

With speaker normalisation, a clip's reference is made of its speaker's other clips as the *tuned* top sees
them: at the start of every epoch the training rows' statistics are recomputed and the population priors
refitted on them, and the epoch draws its references from those (a reference is then at most one epoch stale).
After the last epoch they are refreshed once more, so the exported priors match the exported top.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import trange

from emoscribe.training.adapters import adapter_state, add_adapters
from emoscribe.training.device import mixed_precision
from emoscribe.training.features import FeatureSet
from emoscribe.training.frames import FrameSet
from emoscribe.training.heads import AttentiveStatistics, EmotionHeads, layer_statistics
from emoscribe.training.records import Record
from emoscribe.training.references import ReferenceSampler, fit_priors
from emoscribe.training.sampling import batch_targets, epoch_order
from emoscribe.training.train import (
    CPU,
    TextBank,
    TrainConfig,
    batch_loss,
    batch_variants,
    sample_references,
    training_pairs,
    training_variants,
)
from emoscribe.training.whisper import WhisperAudioEncoder


class EncoderTop(nn.Module):
    """Frames entering the top blocks ``(batch, T, d)`` and mask → statistics of the layers they produce.

    With no block, the frames are the encoder's last hidden state and only its pooling is trained. With
    ``adapter_rank``, the blocks and the final LayerNorm stay frozen and only their adapters train.
    """

    def __init__(
        self, encoder: WhisperAudioEncoder, unfreeze_layers: int, attention: bool, adapter_rank: int = 0
    ) -> None:
        super().__init__()
        n_blocks = encoder.config.n_layers
        if not 0 <= unfreeze_layers <= n_blocks or not (unfreeze_layers or attention):
            raise ValueError(f"unfreeze_layers must be 1..{n_blocks}, or 0 with attention pooling")
        self.blocks = nn.ModuleList(copy.deepcopy(encoder.blocks[n_blocks - unfreeze_layers :]))
        self.norm = copy.deepcopy(encoder.norm)
        self.adapter_rank = adapter_rank
        self.norm.requires_grad_(not adapter_rank)
        for block in self.blocks:
            if adapter_rank:
                add_adapters(block, adapter_rank)
            else:
                block.requires_grad_(True)
        self.pool = AttentiveStatistics(encoder.config.d_model) if attention else None
        self.input_layer = n_blocks - unfreeze_layers
        """Hidden state (0 = embedding) whose frames come in."""
        self.n_outputs = max(unfreeze_layers, 1)
        """Hidden states whose statistics come out: the top ``n_outputs`` of the encoder's."""

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        outputs = []
        x = frames
        for i, block in enumerate(self.blocks):
            x = block(x, mask)
            outputs.append(self.norm(x) if i == len(self.blocks) - 1 else x)
        return layer_statistics(outputs or [frames], mask, self.pool)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """What fine-tuning trains in the encoder: the adapters, or the blocks' and final LayerNorm's weights."""
        return [p for p in [*self.blocks.parameters(), *self.norm.parameters()] if p.requires_grad]

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """What the parts store of the tuned encoder, under the encoder's own parameter names: the adapters
        (``blocks.3.attn.query.adapter_down``, ...), or the tuned blocks and final LayerNorm to load into it."""
        if self.adapter_rank:
            return {
                name: value
                for i, block in enumerate(self.blocks)
                for name, value in adapter_state(block, f"blocks.{self.input_layer + i}.").items()
            }
        if not self.blocks:
            return {}
        state = {
            f"blocks.{self.input_layer + i}.{name}": value
            for i, block in enumerate(self.blocks)
            for name, value in block.state_dict().items()
        }
        return state | {f"norm.{name}": value for name, value in self.norm.state_dict().items()}


def fine_tune(
    heads: EmotionHeads,
    top: EncoderTop,
    features: FeatureSet,
    frames: FrameSet,
    bank: TextBank,
    records: Sequence[Record],
    train: Sequence[int],
    config: TrainConfig,
    device: torch.device = CPU,
) -> None:
    """Train ``top`` and ``heads`` together for ``config.unfreeze_epochs`` on the ``train`` rows on ``device``,
    in place; both end on the CPU."""
    torch.manual_seed(config.seed)
    heads.to(device)
    top.to(device)
    groups = [
        {"params": top.encoder_parameters(), "lr": config.encoder_learning_rate},
        {"params": list(heads.parameters()), "lr": config.learning_rate * config.head_learning_rate_scale},
    ]
    if top.pool is not None:
        groups.append({"params": list(top.pool.parameters()), "lr": config.learning_rate})
    optimiser = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps = max(1, config.unfreeze_epochs * math.ceil(len(train) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, [g["lr"] for g in optimiser.param_groups], total_steps=steps, pct_start=0.1
    )
    prompts = bank.embeddings.to(device)
    rng = np.random.default_rng([config.seed, config.epochs])
    sampler = ReferenceSampler(records, train) if heads.audio.reference is not None else None
    for _ in trange(config.unfreeze_epochs, desc="fine-tune epochs", leave=False):
        seen = _refit_references(heads, top, features, frames, records, train, config) if sampler else None
        heads.train()
        top.train()
        order = epoch_order(records, train, config.balanced_sampling, rng)
        for begin in range(0, len(order), config.batch_size):
            rows = order[begin : begin + config.batch_size]
            variants = batch_variants(features, len(rows), config.telephone_probability, rng)
            lower = np.stack([features.stats[v][r, : -top.n_outputs] for v, r in zip(variants, rows, strict=True)])
            hidden, mask = (t.to(device) for t in frames.batch(variants, rows))
            reference = None
            if sampler is not None:
                drawn = sample_references(sampler, seen, rows, variants, config, rng)
                reference = tuple(t.to(device) for t in drawn)
            columns, positives, valid = training_pairs(bank, records, rows, config, rng)
            targets = batch_targets(records, rows).to(device)
            with mixed_precision(device, config.mixed_precision):
                audio = torch.cat([torch.from_numpy(lower).float().to(device), top(hidden, mask)], dim=1)
                loss, _, _ = batch_loss(
                    heads, audio, prompts[columns], positives, valid, targets, config, reference
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    if sampler is not None:
        _refit_references(heads, top, features, frames, records, train, config)
    heads.cpu().eval()
    top.cpu().eval()


def _refit_references(
    heads: EmotionHeads,
    top: EncoderTop,
    features: FeatureSet,
    frames: FrameSet,
    records: Sequence[Record],
    train: Sequence[int],
    config: TrainConfig,
) -> FeatureSet:
    """The training rows' statistics under ``top`` as it is now, with the speaker priors refitted on them:
    what the next epoch's speaker references are drawn from."""
    top.eval()
    variants = training_variants(features)
    seen = tuned_features(features, frames, top, train, variants)
    fit_priors(heads.audio.reference, seen, records, train, variants, config.prior_clips)
    return seen


@torch.inference_mode()
def tuned_features(
    features: FeatureSet,
    frames: FrameSet,
    top: EncoderTop,
    rows: Sequence[int],
    variants: Sequence[str],
    batch_size: int = 64,
) -> FeatureSet:
    """``features`` of ``variants`` with the top layers of ``rows`` recomputed by ``top``; other rows keep the
    frozen statistics, so only ``rows`` may be read from the result."""
    stats = {v: features.stats[v].copy() for v in variants}
    device = next(top.parameters()).device
    order = sorted(rows, key=lambda r: frames.offsets[variants[0]][r + 1] - frames.offsets[variants[0]][r])
    for variant in variants:
        for begin in range(0, len(order), batch_size):
            chunk = order[begin : begin + batch_size]
            batch = (t.to(device) for t in frames.batch([variant] * len(chunk), chunk))
            out = top(*batch).float().cpu().numpy()
            stats[variant][chunk, -top.n_outputs :] = out.astype(stats[variant].dtype)
    return FeatureSet(encoder=features.encoder, stats=stats)
