"""Engines run the bundle's towers on batches of utterances; each backend lives in a module of its own behind
:class:`Engine`, and :func:`open_engine` picks one by name."""

from __future__ import annotations

from emoscribe.bundle import Bundle
from emoscribe.daemon.engine.protocol import Engine, EngineOutput

__all__ = ["BACKENDS", "Engine", "EngineOutput", "open_engine"]

BACKENDS = ("local", "triton")


def open_engine(
    bundle: Bundle,
    backend: str = "local",
    *,
    url: str = "",
    device: str = "auto",
    variant: str = "auto",
    threads: int = 0,
) -> Engine:
    """``local``: ONNX Runtime in this process on ``device`` with ``threads``; ``triton``: the Triton server
    at ``url`` (gRPC ``host:port``), which must serve this bundle's towers."""
    if backend == "local":
        from emoscribe.daemon.engine.onnx_local import OnnxEngine

        return OnnxEngine(bundle, device, variant, threads)
    if backend == "triton":
        from emoscribe.daemon.engine.triton import TritonEngine

        return TritonEngine(bundle, url, variant)
    raise ValueError(f"engine backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
