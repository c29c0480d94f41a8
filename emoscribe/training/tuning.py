"""Partial fine-tuning: the top encoder blocks and/or attentive pooling of the top layer, trained after the heads.

The heads first converge on the cached statistics of the frozen encoder (``train_heads``); then the top
``unfreeze_layers`` blocks, copied from the encoder, run on cached frames of the layer below them and are
trained together with the heads at a small learning rate. The copied blocks and the zero-initialised attention
start out computing exactly the frozen statistics, so the second stage starts from the frozen solution.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import trange

from emoscribe.training.device import mixed_precision
from emoscribe.training.features import FeatureSet
from emoscribe.training.frames import FrameSet
from emoscribe.training.heads import AttentiveStatistics, EmotionHeads, layer_statistics
from emoscribe.training.records import Record
from emoscribe.training.train import CPU, TextBank, TrainConfig, batch_loss, batch_variants, training_pairs
from emoscribe.training.whisper import WhisperAudioEncoder


class EncoderTop(nn.Module):
    """Frames entering the top blocks ``(batch, T, d)`` and mask → statistics of the layers they produce.

    With no block, the frames are the encoder's last hidden state and only its pooling is trained.
    """

    def __init__(self, encoder: WhisperAudioEncoder, unfreeze_layers: int, attention: bool) -> None:
        super().__init__()
        n_blocks = encoder.config.n_layers
        if not 0 <= unfreeze_layers <= n_blocks or not (unfreeze_layers or attention):
            raise ValueError(f"unfreeze_layers must be 1..{n_blocks}, or 0 with attention pooling")
        self.blocks = nn.ModuleList(copy.deepcopy(encoder.blocks[n_blocks - unfreeze_layers :]))
        self.norm = copy.deepcopy(encoder.norm)
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

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The tuned blocks and final LayerNorm under the encoder's own parameter names, to load into it."""
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
    tuned = [*top.blocks.parameters(), *top.norm.parameters()] if top.blocks else []
    groups = [
        {"params": tuned, "lr": config.encoder_learning_rate},
        {"params": list(heads.parameters()), "lr": config.learning_rate * config.head_learning_rate_scale},
    ]
    if top.pool is not None:
        groups.append({"params": list(top.pool.parameters()), "lr": config.learning_rate})
    optimiser = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps = max(1, config.unfreeze_epochs * math.ceil(len(train) / config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, [g["lr"] for g in optimiser.param_groups], total_steps=steps, pct_start=0.1
    )
    labels = torch.tensor([r.label for r in records], device=device)
    prompts = bank.embeddings.to(device)
    rng = np.random.default_rng([config.seed, config.epochs])
    for _ in trange(config.unfreeze_epochs, desc="fine-tune epochs", leave=False):
        heads.train()
        top.train()
        order = rng.permutation(np.asarray(train))
        for begin in range(0, len(order), config.batch_size):
            rows = order[begin : begin + config.batch_size]
            variants = batch_variants(features, len(rows), config.telephone_probability, rng)
            lower = np.stack([features.stats[v][r, : -top.n_outputs] for v, r in zip(variants, rows, strict=True)])
            hidden, mask = (t.to(device) for t in frames.batch(variants, rows))
            columns, positives = training_pairs(bank, records, rows, config, rng)
            with mixed_precision(device, config.mixed_precision):
                audio = torch.cat([torch.from_numpy(lower).float().to(device), top(hidden, mask)], dim=1)
                loss, _, _ = batch_loss(heads, audio, prompts[columns], positives, labels[rows], config)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    heads.cpu().eval()
    top.cpu().eval()


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
    order = sorted(rows, key=lambda r: frames.offsets[variants[0]][r + 1] - frames.offsets[variants[0]][r])
    for variant in variants:
        for begin in range(0, len(order), batch_size):
            chunk = order[begin : begin + batch_size]
            out = top(*frames.batch([variant] * len(chunk), chunk)).numpy()
            stats[variant][chunk, -top.n_outputs :] = out.astype(stats[variant].dtype)
    return FeatureSet(encoder=features.encoder, stats=stats)
