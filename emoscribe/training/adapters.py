"""Low-rank adapters (LoRA, Hu et al., 2021) on the encoder's tuned blocks, instead of tuning their full weights.

An adapted projection computes ``W x + b + B A x`` with ``W`` and ``b`` frozen, ``A`` (rank x in) random and
``B`` (out x rank) zero, so an adapted block starts out exactly as the frozen one, and only ``A`` and ``B`` train.
They are what the parts store: a few hundred kB where the tuned blocks themselves are megabytes. The bundle
builder merges ``B A`` into ``W`` (:func:`merge_adapters`), so the exported graph has no adapter in it and runs
exactly as fast as the frozen encoder. Under Adam the learning rate sets the step of ``B A`` directly, so no
separate LoRA scale is kept.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ADAPTED = ("attn.query", "attn.key", "attn.value", "attn.out", "mlp.0", "mlp.2")
"""The projections of a Whisper block (``emoscribe.training.whisper.Block``) that get an adapter: all of them."""

DOWN, UP = "adapter_down", "adapter_up"
"""Tensor name suffixes of ``A`` and ``B`` in stored adapters: ``blocks.3.attn.query.adapter_down``."""


class LowRankAdapted(nn.Module):
    """A frozen linear projection plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.down = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))
        self.up = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.down), self.up)


def add_adapters(block: nn.Module, rank: int) -> None:
    """Freeze ``block`` and give each of its ``ADAPTED`` projections a rank-``rank`` adapter, in place."""
    if rank < 1:
        raise ValueError(f"adapter rank must be at least 1, got {rank}")
    block.requires_grad_(False)
    for path in ADAPTED:
        parent_path, _, name = path.rpartition(".")
        parent = block.get_submodule(parent_path)
        setattr(parent, name, LowRankAdapted(parent.get_submodule(name), rank))


def adapter_state(block: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """The adapters of one adapted ``block``, named ``{prefix}{projection}.adapter_down`` / ``adapter_up``."""
    state = {}
    for path in ADAPTED:
        adapted = block.get_submodule(path)
        state[f"{prefix}{path}.{DOWN}"] = adapted.down.detach()
        state[f"{prefix}{path}.{UP}"] = adapted.up.detach()
    return state


def merge_adapters(weights: dict[str, torch.Tensor], adapters: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` (a state dict) with every stored adapter's ``B A`` added to the weight it adapts.

    Raises ``ValueError`` naming an adapter whose projection is not in ``weights`` or whose pair is incomplete.
    """
    merged = dict(weights)
    downs = {name.removesuffix(f".{DOWN}") for name in adapters if name.endswith(f".{DOWN}")}
    ups = {name.removesuffix(f".{UP}") for name in adapters if name.endswith(f".{UP}")}
    if downs != ups or len(downs) * 2 != len(adapters):
        raise ValueError(f"incomplete adapters: {sorted(downs ^ ups) or 'tensors of unknown names'}")
    for projection in sorted(downs):
        key = f"{projection}.weight"
        if key not in weights:
            raise ValueError(f"adapter {projection} adapts no weight of the encoder")
        delta = adapters[f"{projection}.{UP}"].float() @ adapters[f"{projection}.{DOWN}"].float()
        merged[key] = weights[key] + delta.to(weights[key].dtype)
    return merged
