"""Where audio comes from: each source in a module of its own, handing PCM frames to a ``FrameSink``, and the one
function that opens them from their URIs."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from emoscribe.daemon.config import ConfigError, DaemonConfig

if TYPE_CHECKING:
    from emoscribe.daemon.frontend import Source

SCHEMES = ("file:", "mic:", "stdin:", "rtp://")


def rtp_address(uri: str, index: int) -> tuple[str, int]:
    """Host and port of ``rtp://HOST:PORT``."""
    address = urlparse(uri)
    if address.port is None:
        raise ConfigError(f"sources[{index}]: {uri!r} needs a port, e.g. rtp://127.0.0.1:5004")
    return address.hostname or "127.0.0.1", address.port


def is_rtp(uri: str) -> bool:
    return uri.partition(":")[0] == "rtp"


def open_sources(config: DaemonConfig, sockets: Sequence[socket.socket]) -> list[Source]:
    """Sources from their URIs: ``file:PATH``, ``mic:[DEVICE]``, ``stdin:[RATE]``, ``rtp://HOST:PORT``; the
    RTP sources take the bound ``sockets`` in order."""
    sources: list[Source] = []
    rtp_sockets = iter(sockets)
    for index, uri in enumerate(config.sources):
        scheme, _, rest = uri.partition(":")
        if scheme == "file":
            from emoscribe.daemon.sources.file_source import FileSource

            path = Path(rest)
            if not path.is_file():
                raise ConfigError(f"sources[{index}]: no such file {rest!r}")
            sources.append(FileSource([path], f"file-{index}-{path.stem}", realtime=config.realtime))
        elif scheme == "mic":
            from emoscribe.daemon.sources.mic_source import MicSource

            mics = sum(other.partition(":")[0] == "mic" for other in config.sources)
            try:
                sources.append(MicSource(rest or None, "mic" if mics == 1 else f"mic-{index}"))
            except ValueError as error:
                raise ConfigError(f"sources[{index}]: {error}") from error
        elif scheme == "stdin":
            from emoscribe.daemon.sources.stdin_source import StdinSource

            sources.append(StdinSource(rate=int(rest) if rest else 16_000))
        elif scheme == "rtp":
            from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource

            host, port = rtp_address(uri, index)
            rtp = RtpConfig(host, port, config.rtp.policy(), config.rtp.receive_buffer_bytes)
            sources.append(RtpSource(rtp, next(rtp_sockets)))
        else:
            raise ConfigError(f"sources[{index}]: unknown source {uri!r} ({', '.join(SCHEMES)})")
    return sources
