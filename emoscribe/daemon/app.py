"""Building a running daemon from its configuration: bundle, engine, front ends and sources, publisher, metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import zmq

from emoscribe.bundle import Bundle, resolve_bundle
from emoscribe.cues.binning import Binner
from emoscribe.cues.grounding import GroundingModel
from emoscribe.curve import CurveError, CurveServer
from emoscribe.daemon.config import ConfigError, DaemonConfig
from emoscribe.daemon.control import ControlServer
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine import open_engine
from emoscribe.daemon.frontend import InProcess, Source, segmenter_factory
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.normalisation import open_normaliser
from emoscribe.daemon.population import PopulationNormaliser
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.queries import QueryError, QueryStore
from emoscribe.daemon.roles import RoleSettings
from emoscribe.daemon.service import Producer, Service
from emoscribe.daemon.shards import ShardPool
from emoscribe.daemon.sources import is_rtp, open_sources, rtp_address
from emoscribe.daemon.transcriber import MissingExtraError, Transcriber
from emoscribe.daemon.udp_sockets import bind_udp, ssrc_socket_group
from emoscribe.messages import Message

log = logging.getLogger(__name__)


def make_producers(
    config: DaemonConfig, binner: Binner, extra: Sequence[Source] = (), json_logs: bool = False
) -> list[Producer]:
    """The front ends: all in this process with ``workers = 1``; else RTP legs sharded over worker processes
    and any other source (a file, the demo) in this process. Every RTP socket is bound here, at start-up."""
    rtp_uris = [(index, uri) for index, uri in enumerate(config.sources) if is_rtp(uri)]
    make_segmenter = segmenter_factory(config)
    interval = config.cues.partial_interval_s
    if config.workers == 1 or not rtp_uris:
        sockets = [bind_udp(*rtp_address(uri, index)) for index, uri in rtp_uris]
        return [InProcess([*open_sources(config, sockets), *extra], make_segmenter, binner, interval)]
    others = replace(config, sources=tuple(uri for uri in config.sources if not is_rtp(uri)))
    local = [*open_sources(others, ()), *extra]
    groups = [ssrc_socket_group(*rtp_address(uri, index), config.workers) for index, uri in rtp_uris]
    rtp_only = replace(config, sources=tuple(uri for _, uri in rtp_uris))
    producers: list[Producer] = [ShardPool(rtp_only, binner, groups, json_logs)]
    if local:
        producers.append(InProcess(local, make_segmenter, binner, interval))
    return producers


def build_service(config: DaemonConfig, echo: Callable[[Message], None] | None = None) -> Service:
    """Everything but the sources, opened and checked: bad bundle, busy port or bad key fail here, at start."""
    bundle = resolve_bundle(config.engine.bundle)
    settings = config.engine
    engine = open_engine(
        bundle,
        settings.backend,
        url=settings.url,
        device=settings.device,
        variant=settings.variant,
        threads=settings.threads,
    )
    engine.warm_up(config.batch.max_batch)
    try:
        normaliser = open_normaliser(bundle, config.engine.speaker_normalisation, config.population)
    except ValueError as error:
        raise ConfigError(f"population: {error}") from error
    describer = make_describer(config, bundle)
    try:
        queries = QueryStore(
            engine.embed_texts if bundle.has_text_tower else None,
            Path(config.queries.file) if config.queries.file else None,
            config.queries.max_queries,
        )
    except QueryError as error:
        raise ConfigError(f"queries.file: {error}") from error
    metrics = Metrics()
    if config.metrics.enabled:
        metrics.serve(config.metrics.host, config.metrics.port)
    curve = None
    if config.publish.curve_secret_key:
        try:
            curve = CurveServer(
                config.publish.curve_secret_key, config.publish.curve_clients, zmq.Context.instance()
            )
        except CurveError as error:
            raise ConfigError(f"publish: {error}") from error
    publisher = Publisher(config.publish.endpoint, config.publish.send_hwm, curve, echo=echo)
    control = None
    if config.control.enabled:
        control = ControlServer(config.control.endpoint, curve, zmq.Context.instance())
    transcriber = open_transcriber(config)
    log.info(
        "bundle %s, engine %s (%s), %s, publishing on %s",
        bundle.path,
        engine.providers,
        engine.variant,
        f"population normalisation over {config.population.horizon} utterances"
        if isinstance(normaliser, PopulationNormaliser)
        else f"speaker normalisation over {bundle.speaker_horizon} utterances"
        if normaliser is not None
        else "speaker normalisation off",
        publisher.endpoint,
    )
    return Service(config, engine, describer, publisher, metrics, normaliser, curve, queries, control, transcriber)


def open_transcriber(config: DaemonConfig) -> Transcriber | None:
    """The ``[asr]`` model when it covers one of the configured sources (``auto``: a microphone), else none:
    a daemon that transcribes nothing never imports faster-whisper. ``auto`` without the ``asr`` extra or the
    model's package goes on without transcripts, saying so; ``true`` without them does not start."""
    settings = config.asr
    if not settings.needed([uri.partition(":")[0] for uri in config.sources]):
        return None
    try:
        transcriber = settings.open()
    except (MissingExtraError, FileNotFoundError) as error:
        if settings.enabled != "auto":
            raise ConfigError(f"asr: {error}") from error
        log.warning("asr: microphone streams are not transcribed: %s", error)
        return None
    except (OSError, RuntimeError, ValueError) as error:
        raise ConfigError(f"asr: {error}") from error
    every = "every" if settings.enabled == "true" else "microphone"
    log.info(
        "transcripts of %s streams by %s (%s, %s)", every, settings.model, settings.device, settings.compute_type
    )
    return transcriber


def make_describer(config: DaemonConfig, bundle: Bundle) -> Describer:
    """The describer of ``[describe]``, ``[grounding]`` and ``[abstain]``, for ``bundle``."""
    return Describer(
        bundle,
        config.describe.top_k,
        config.describe.min_confidence,
        grounding_model(config),
        config.grounding.contradiction_below,
        config.abstain,
    )


def grounding_model(config: DaemonConfig) -> GroundingModel | None:
    """The cue model that grounds labels: the shipped one, a fitted file, or none (``enabled = false``)."""
    if not config.grounding.enabled:
        return None
    try:
        return GroundingModel.load(config.grounding.model) if config.grounding.model else GroundingModel.default()
    except ValueError as error:
        raise ConfigError(f"grounding.model: {error}") from error


async def serve(
    service: Service, producers: Sequence[Producer], reread_roles: Callable[[], RoleSettings] | None = None
) -> bool:
    """Run until the sources end or SIGINT/SIGTERM; ``True`` when everything in flight was published. SIGHUP
    reloads the CURVE client keys and, with ``reread_roles``, the ``[roles]`` rules."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def hang_up() -> None:
        if service.curve is not None:
            service.curve.reload()
        if reread_roles is not None:
            try:
                service.reload_roles(reread_roles())
            except ConfigError as error:
                log.error("roles not reloaded: %s", error)

    loop.add_signal_handler(signal.SIGHUP, hang_up)
    await asyncio.sleep(service.config.publish.join_delay_s)
    try:
        return await service.run(producers, stop)
    finally:
        service.publisher.close()
        if service.curve is not None:
            service.curve.stop()
