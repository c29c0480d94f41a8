"""Whisper's audio tower in PyTorch: log-mel front end and encoder, from CTranslate2 or transformers weights.

Unlike the reference implementations, both run on real lengths (no padding to 30 s) and take a mask, so a padded
batch gives every utterance exactly what it would get alone, and both export to ONNX with dynamic batch and
length. Hidden states of every layer are returned because the heads pool a weighted mix of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emoscribe.training.ct2 import read_model_bin

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
LOG_FLOOR = -10.0
"""log10 of the 1e-10 power clamp: the smallest value a log-mel bin can take."""


@dataclass(frozen=True, slots=True)
class WhisperEncoderConfig:
    """Shapes of a Whisper encoder; the MLP is always 4 * ``d_model`` wide, as in every Whisper size."""

    n_mels: int
    d_model: int
    n_heads: int
    n_layers: int
    n_ctx: int = 1500
    """Positions after the stride-2 convolution: 30 s of audio."""


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's fixed positional table (sin half then cos half, timescales 1 … 10000)."""
    increment = math.log(10_000) / (channels // 2 - 1)
    inv_timescales = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float64))
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_timescales[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


class SelfAttention(nn.Module):
    """Multi-head self-attention; the key projection has no bias (it would shift all scores of a query equally)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = (
            proj(x).view(batch, length, self.n_heads, -1).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), key_mask)
        return x + self.mlp(self.mlp_norm(x))


class WhisperAudioEncoder(nn.Module):
    """Log-mel ``(batch, n_mels, frames ≤ 2 · n_ctx)`` and optional frame mask ``(batch, frames)`` (True = valid)
    → hidden states ``(batch, ceil(frames / 2), d_model)`` of the embedding and of every block, the last one
    after the final LayerNorm (``n_layers + 1`` tensors).

    With a mask, invalid frames are zeroed before each convolution (as the convolution's own zero padding would
    be for the utterance alone) and are never attended to; their outputs are meaningless. Token ``j`` is valid
    when frame ``2j`` is, i.e. ``frame_mask[:, ::2]``.
    """

    def __init__(self, config: WhisperEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv1d(config.n_mels, config.d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(config.d_model, config.d_model, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positions", sinusoids(config.n_ctx, config.d_model))
        self.blocks = nn.ModuleList(Block(config.d_model, config.n_heads) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, mel: torch.Tensor, frame_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        if frame_mask is None:
            x = F.gelu(self.conv2(F.gelu(self.conv1(mel))))
            key_mask = None
        else:
            keep = frame_mask[:, None, :].to(mel.dtype)
            x = F.gelu(self.conv2(F.gelu(self.conv1(mel * keep)) * keep))
            key_mask = frame_mask[:, ::2]
        x = x.transpose(1, 2)
        if not torch.jit.is_tracing() and x.shape[1] > self.config.n_ctx:
            raise ValueError(f"{mel.shape[-1]} frames exceed Whisper's context of {2 * self.config.n_ctx}")
        x = x + self.positions[: x.shape[1]]
        hidden = [x]
        for block in self.blocks:
            x = block(x, key_mask)
            hidden.append(x)
        hidden[-1] = self.norm(x)
        return tuple(hidden)


def _mel_filterbank(n_mels: int, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney-style mel filterbank ``(n_mels, n_fft // 2 + 1)`` (area-normalised triangles on the Slaney mel
    scale, 0 Hz to Nyquist), the one Whisper was trained with."""

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return np.where(
            hz < 1000.0, hz * 3.0 / 200.0, 15.0 + 27.0 * np.log(np.maximum(hz, 1e-9) / 1000.0) / np.log(6.4)
        )

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0))

    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(rate / 2)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    triangles = np.maximum(0.0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))
    return triangles * (2.0 / (upper - lower))


class LogMel(nn.Module):
    """16 kHz waveform ``(batch, samples)`` and sample ``lengths (batch,)`` → Whisper log-mel
    ``(batch, n_mels, ceil(samples / 160))`` and frame mask ``(batch, frames)``.

    Frame ``t`` is centred on sample ``160 t`` and is valid when that sample lies inside the utterance; this is
    Whisper's framing (reflect padding at the start, its dropped last frame) for audio followed by silence, which
    is what Whisper's 30 s zero padding gives every real clip. Samples past each length are zeroed, so padding
    content never leaks in; the STFT is a convolution with fixed DFT kernels so the graph exports to ONNX; the
    dynamic-range floor (max - 8) is taken per utterance over its valid frames only.
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        n = torch.arange(N_FFT, dtype=torch.float64)
        k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / N_FFT)
        phase = 2 * math.pi * k[:, None] * n[None, :] / N_FFT
        kernels = torch.cat([window * torch.cos(phase), -window * torch.sin(phase)])
        self.register_buffer("dft", kernels[:, None, :].float(), persistent=False)
        self.register_buffer("mel_filters", torch.from_numpy(_mel_filterbank(n_mels)).float(), persistent=False)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        samples = torch.arange(waveform.shape[1], device=waveform.device)
        x = (waveform * (samples[None, :] < lengths[:, None]).to(waveform.dtype))[:, None, :]
        # Whisper's framing: the start reflected, zeros after the end (its 30 s padding). Appending the zeros first
        # gives a clip shorter than the reflected 200 samples zeros to reflect; keeping 199 of them yields exactly
        # ceil(samples / 160) frames, i.e. Whisper's dropped last frame.
        x = F.pad(x, (0, N_FFT // 2))
        x = torch.cat([x[:, :, 1 : N_FFT // 2 + 1].flip(-1), x[:, :, :-1]], dim=-1)
        spectrum = F.conv1d(x, self.dft, stride=HOP)
        real, imag = spectrum.chunk(2, dim=1)
        mel = torch.matmul(self.mel_filters, real.square() + imag.square())
        log = torch.log10(mel.clamp_min(1e-10))
        frames = torch.arange(log.shape[-1], device=waveform.device)
        frame_mask = frames[None, :] * HOP < lengths.clamp_min(1)[:, None]
        peak = log.masked_fill(~frame_mask[:, None, :], LOG_FLOOR).amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(log, peak - 8.0) + 4.0) / 4.0, frame_mask


def load_ct2_encoder(parts: Path | Sequence[Path]) -> WhisperAudioEncoder:
    """The encoder of a CTranslate2 Whisper ``model.bin`` (whole or in parts), in float32, in eval mode.

    The fused query/key/value projection is split in three; its key bias (zeros in converted models, and
    without effect on attention anyway) is dropped.
    """
    spec, variables = read_model_bin(parts, keep=lambda name: name.startswith("encoder/"))
    if spec.name != "WhisperSpec":
        raise ValueError(f"{parts}: a {spec.name} model, not Whisper")
    v = {
        name.removeprefix("encoder/"): torch.from_numpy(array.astype(np.float32))
        for name, array in variables.items()
    }
    n_ctx, d_model = v["position_encodings/encodings"].shape
    config = WhisperEncoderConfig(
        n_mels=v["conv1/weight"].shape[1],
        d_model=d_model,
        n_heads=int(v["num_heads"]),
        n_layers=sum(1 for name in v if name.endswith("self_attention/linear_0/weight")),
        n_ctx=n_ctx,
    )
    state = {"positions": v["position_encodings/encodings"]}
    state |= _affine("norm", v, "layer_norm/gamma", "layer_norm/beta")
    state |= _affine("conv1", v, "conv1/weight", "conv1/bias") | _affine("conv2", v, "conv2/weight", "conv2/bias")
    for i in range(config.n_layers):
        src, dst = f"layer_{i}/", f"blocks.{i}."
        weight = v[src + "self_attention/linear_0/weight"].chunk(3)
        bias = v[src + "self_attention/linear_0/bias"].chunk(3)
        state |= {
            dst + "attn.query.weight": weight[0],
            dst + "attn.query.bias": bias[0],
            dst + "attn.key.weight": weight[1],
            dst + "attn.value.weight": weight[2],
            dst + "attn.value.bias": bias[2],
        }
        for ours, theirs in (
            ("attn_norm", "self_attention/layer_norm/"),
            ("mlp_norm", "ffn/layer_norm/"),
        ):
            state |= _affine(dst + ours, v, src + theirs + "gamma", src + theirs + "beta")
        for ours, theirs in (
            ("attn.out", "self_attention/linear_1/"),
            ("mlp.0", "ffn/linear_0/"),
            ("mlp.2", "ffn/linear_1/"),
        ):
            state |= _affine(dst + ours, v, src + theirs + "weight", src + theirs + "bias")
    return _build(config, state)


def load_hf_encoder(model_id_or_dir: str | Path) -> WhisperAudioEncoder:
    """The encoder of a transformers Whisper checkpoint (hub id or local directory), in float32, in eval mode."""
    from transformers import WhisperModel

    model = WhisperModel.from_pretrained(str(model_id_or_dir))
    hf = model.config
    if hf.encoder_ffn_dim != 4 * hf.d_model or hf.activation_function != "gelu":
        raise ValueError(
            f"{model_id_or_dir}: not a standard Whisper encoder "
            f"(MLP width {hf.encoder_ffn_dim}, {hf.activation_function})"
        )
    config = WhisperEncoderConfig(
        n_mels=hf.num_mel_bins,
        d_model=hf.d_model,
        n_heads=hf.encoder_attention_heads,
        n_layers=hf.encoder_layers,
        n_ctx=hf.max_source_positions,
    )
    v = model.encoder.state_dict()
    state = {"positions": v["embed_positions.weight"]}
    for ours, theirs in (("norm", "layer_norm"), ("conv1", "conv1"), ("conv2", "conv2")):
        state |= _affine(ours, v, theirs + ".weight", theirs + ".bias")
    for i in range(config.n_layers):
        src, dst = f"layers.{i}.", f"blocks.{i}."
        state[dst + "attn.key.weight"] = v[src + "self_attn.k_proj.weight"]
        for ours, theirs in (
            ("attn.query", "self_attn.q_proj"),
            ("attn.value", "self_attn.v_proj"),
            ("attn.out", "self_attn.out_proj"),
            ("attn_norm", "self_attn_layer_norm"),
            ("mlp_norm", "final_layer_norm"),
            ("mlp.0", "fc1"),
            ("mlp.2", "fc2"),
        ):
            state |= _affine(dst + ours, v, src + theirs + ".weight", src + theirs + ".bias")
    return _build(config, state)


def _affine(prefix: str, source: Mapping[str, torch.Tensor], weight: str, bias: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.weight": source[weight], f"{prefix}.bias": source[bias]}


def _build(config: WhisperEncoderConfig, state: Mapping[str, torch.Tensor]) -> WhisperAudioEncoder:
    encoder = WhisperAudioEncoder(config)
    encoder.load_state_dict({name: tensor.float() for name, tensor in state.items()}, strict=True)
    return encoder.eval()
