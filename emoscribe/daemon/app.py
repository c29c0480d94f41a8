"""Building a running daemon from its configuration: bundle, engine, sources, segmenters, publisher, metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from emoscribe.bundle import resolve_bundle
from emoscribe.daemon.config import ConfigError, DaemonConfig
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.publisher import CurveKeys, Publisher
from emoscribe.daemon.segmenter import Segmenter
from emoscribe.daemon.service import Service, Source

log = logging.getLogger(__name__)


def make_sources(config: DaemonConfig) -> list[Source]:
    """Sources from their URIs: ``file:PATH``, ``mic:[DEVICE]``, ``stdin:[RATE]``, ``rtp://HOST:PORT``."""
    sources: list[Source] = []
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

            sources.append(MicSource(rest or None))
        elif scheme == "stdin":
            from emoscribe.daemon.sources.stdin_source import StdinSource

            sources.append(StdinSource(rate=int(rest) if rest else 16_000))
        elif scheme == "rtp":
            from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource

            address = urlparse(uri)
            if address.port is None:
                raise ConfigError(f"sources[{index}]: {uri!r} needs a port, e.g. rtp://127.0.0.1:5004")
            try:
                rtp = RtpConfig(
                    host=address.hostname or "127.0.0.1",
                    port=address.port,
                    allow=config.rtp.allow or None,
                    inactivity_timeout=config.rtp.inactivity_timeout_s,
                    max_streams=config.rtp.max_streams,
                    stream_key=config.rtp.stream_key,
                )
            except ValueError as error:
                raise ConfigError(f"rtp: {error}") from error
            sources.append(RtpSource(rtp))
        else:
            raise ConfigError(f"sources[{index}]: unknown source {uri!r} (file:, mic:, stdin:, rtp://)")
    return sources


def segmenter_factory(config: DaemonConfig) -> Callable[[str], Segmenter]:
    """A new segmenter (with its own VAD state) per stream; the VAD is tried once here, at start."""
    try:
        config.segmenter.make_vad()
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"segmenter: {error}") from error
    return lambda stream: Segmenter(stream, config.segmenter, config.segmenter.make_vad())


def build_service(config: DaemonConfig, echo: Callable[[str, dict], None] | None = None) -> Service:
    """Everything but the sources, opened and checked: bad bundle, busy port or bad key fail here, at start."""
    bundle = resolve_bundle(config.engine.bundle)
    engine = OnnxEngine(bundle, config.engine.device, config.engine.variant, config.engine.threads)
    engine.warm_up(config.batch.max_batch)
    describer = Describer(bundle, config.describe.top_k, config.describe.min_confidence)
    if config.describe.queries:
        describer.set_queries(config.describe.queries, engine.embed_texts(config.describe.queries))
    metrics = Metrics()
    if config.metrics.enabled:
        metrics.serve(config.metrics.host, config.metrics.port)
    curve = CurveKeys.load(config.publish.curve_secret_key) if config.publish.curve_secret_key else None
    publisher = Publisher(config.publish.endpoint, config.publish.send_hwm, curve, echo=echo)
    log.info(
        "bundle %s, engine %s (%s), publishing on %s",
        bundle.path,
        engine.providers,
        engine.variant,
        publisher.endpoint,
    )
    return Service(config, engine, describer, publisher, metrics, segmenter_factory(config))


async def serve(service: Service, sources: list[Source]) -> bool:
    """Run until the sources end or SIGINT/SIGTERM; ``True`` when everything in flight was published."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await asyncio.sleep(service.config.publish.join_delay_s)
    try:
        return await service.run(sources, stop)
    finally:
        service.publisher.close()
