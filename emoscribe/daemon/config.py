"""Daemon configuration: TOML file, then ``EMOSCRIBE_<SECTION>_<KEY>`` environment variables, then CLI flags.

Every value is validated at start; an unknown section or key, or a value of the wrong type, is an error that
names it (``segmenter.hangover_ms: expected a number, got 'long'``), so a typo never runs with a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emoscribe.daemon.abstention import AbstainSettings
from emoscribe.daemon.asr import AsrSettings
from emoscribe.daemon.batcher import BatchConfig
from emoscribe.daemon.compliance import ComplianceSettings
from emoscribe.daemon.engine import BACKENDS
from emoscribe.daemon.population import PopulationSettings
from emoscribe.daemon.roles import RoleSettings
from emoscribe.daemon.rtp_streams import StreamPolicy
from emoscribe.daemon.segmenter import SegmenterConfig
from emoscribe.daemon.shedding import BudgetSettings, ShedSettings
from emoscribe.daemon.summary import SummarySettings
from emoscribe.messages import DEFAULT_CONTROL_ENDPOINT, DEFAULT_ENDPOINT

ENV_PREFIX = "EMOSCRIBE_"
NOT_SETTINGS = frozenset({"EMOSCRIBE_DATA", "EMOSCRIBE_CACHE"})
"""Variables of other parts of emoscribe that share the prefix."""


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names it."""


class _Text(str):
    """A value given as text (an environment variable), still to be parsed; a TOML file's values are typed, so
    a string where a list belongs there is a mistake, not a comma-separated list."""


@dataclass(frozen=True, slots=True)
class EngineSettings:
    bundle: str = "tiny.en"
    """A bundle directory, or the name of a default bundle (built into the cache by ``emoscribe export``)."""
    device: str = "auto"
    variant: str = "auto"
    threads: int = 1
    """ONNX Runtime's intra-op threads (0: one per core). One by default: on the CPU a second thread doubled the
    CPU per utterance for no speed-up (benchmarks/RESULTS.md, batch cost), and a node's cores serve more legs."""
    speaker_normalisation: bool = True
    """Judge each utterance against its stream's earlier ones, where the bundle can (one speaker per stream,
    as on a call leg); turn off for a source that mixes speakers in one stream."""
    backend: str = "local"
    """``local``: ONNX Runtime in this process (``device``, ``threads``); ``triton``: the towers on a Triton
    Inference Server at ``url``, written there by ``emoscribe export --triton``."""
    url: str = "127.0.0.1:8001"
    """The Triton server's gRPC address, ``host:port``."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")


@dataclass(frozen=True, slots=True)
class CueSettingsSection:
    partial_interval_s: float = 0.5
    """Seconds between partial ``cues`` messages during speech; 0 turns them off."""
    baseline_half_life: float = 20.0


@dataclass(frozen=True, slots=True)
class DescribeSettings:
    top_k: int = 3
    min_confidence: float = 0.35


@dataclass(frozen=True, slots=True)
class QuerySettings:
    file: str = ""
    """Where run-time queries are kept across restarts (JSON, rewritten atomically on every change); empty keeps
    them in memory only."""
    hysteresis: float = 0.05
    """An alert that entered at a query's threshold leaves only below ``threshold - hysteresis``."""
    max_queries: int = 256

    def __post_init__(self) -> None:
        if not 0.0 <= self.hysteresis < 1.0 or self.max_queries < 1:
            raise ValueError(f"hysteresis must lie in [0, 1) and max_queries be positive: {self}")


@dataclass(frozen=True, slots=True)
class ControlSettings:
    enabled: bool = True
    endpoint: str = DEFAULT_CONTROL_ENDPOINT
    """The control socket for run-time queries; CURVE with the publisher's keys and allowlist when they are set."""


@dataclass(frozen=True, slots=True)
class PublishSettings:
    endpoint: str = DEFAULT_ENDPOINT
    send_hwm: int = 10_000
    curve_secret_key: str = ""
    """Path of the server's CURVE secret key file (``emoscribe keys``); empty for no encryption."""
    curve_clients: str = ""
    """Folder of the public keys (``*.key``) of the clients admitted when CURVE is on; it must list at least
    one. Read again on SIGHUP."""
    heartbeat_s: float = 5.0
    join_delay_s: float = 0.5
    """Pause between binding and the first message, so subscribers that were already waiting are subscribed
    before anything is sent (ZeroMQ drops what a PUB socket sends before a subscription arrives)."""

    def __post_init__(self) -> None:
        if bool(self.curve_secret_key) != bool(self.curve_clients):
            raise ValueError(
                "CURVE needs both curve_secret_key (the server's .key_secret) and curve_clients (a folder of the "
                "admitted clients' .key files); set both, or neither for no encryption"
            )


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True, slots=True)
class RtpSettings:
    inactivity_timeout_s: float = 2.0
    max_streams: int = 2000
    """Open streams per process that receives RTP (each worker, with ``workers`` > 1); when full, a new stream
    evicts one that never carried speech, or the one silent longest."""
    max_streams_per_address: int = 1000
    """Open streams one sender address may hold (per process), so one sender cannot take every slot."""
    unvoiced_timeout_s: float = 10.0
    """A stream that carried no speech this long after it opened ends, and stays closed until it does."""
    speech_level_dbfs: float = -45.0
    """RMS level of a packet that counts as speech for the two rules above (line noise stays below it)."""
    receive_buffer_bytes: int = 8 << 20
    """Socket receive buffer (``SO_RCVBUF``); the kernel caps it at ``net.core.rmem_max``, which is logged."""
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Sender networks (CIDR) accepted; ``["0.0.0.0/0", "::/0"]`` accepts any, an empty list is refused."""
    stream_key: str = "ssrc"

    def __post_init__(self) -> None:
        self.policy()  # refuses, when the configuration is read, what the RTP source would refuse
        if self.receive_buffer_bytes < 1:
            raise ValueError(f"receive_buffer_bytes must be positive, got {self.receive_buffer_bytes}")

    def policy(self) -> StreamPolicy:
        """The RTP source's rules for its streams."""
        return StreamPolicy(
            stream_key=self.stream_key,
            allow=self.allow,
            max_streams=self.max_streams,
            max_streams_per_address=self.max_streams_per_address,
            inactivity_timeout=self.inactivity_timeout_s,
            unvoiced_timeout=self.unvoiced_timeout_s,
            speech_level_dbfs=self.speech_level_dbfs,
        )


@dataclass(frozen=True, slots=True)
class GroundingSettings:
    enabled: bool = True
    model: str = ""
    """A grounding model file from ``emoscribe fit-grounding``; empty for the one shipped in the package."""
    contradiction_below: float = 0.05
    """A label whose grounding score falls below this is flagged ``contradiction``."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.contradiction_below <= 1.0:
            raise ValueError(f"contradiction_below must be within [0, 1], got {self.contradiction_below}")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    sources: tuple[str, ...] = ()
    """``file:PATH``, ``mic:[DEVICE]``, ``stdin:[RATE]``, ``rtp://HOST:PORT``."""
    realtime: bool = True
    workers: int = 1
    """Processes that share the RTP call legs (by SSRC); 1 runs everything in one process, as a microphone,
    file or stdin source always does."""
    drain_deadline_s: float = 5.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    cues: CueSettingsSection = field(default_factory=CueSettingsSection)
    batch: BatchConfig = field(default_factory=BatchConfig)
    describe: DescribeSettings = field(default_factory=DescribeSettings)
    queries: QuerySettings = field(default_factory=QuerySettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    rtp: RtpSettings = field(default_factory=RtpSettings)
    grounding: GroundingSettings = field(default_factory=GroundingSettings)
    abstain: AbstainSettings = field(default_factory=AbstainSettings)
    roles: RoleSettings = field(default_factory=RoleSettings)
    compliance: ComplianceSettings = field(default_factory=ComplianceSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    shedding: ShedSettings = field(default_factory=ShedSettings)
    summary: SummarySettings = field(default_factory=SummarySettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    population: PopulationSettings = field(default_factory=PopulationSettings)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


SECTIONS = frozenset(f.name for f in fields(DaemonConfig) if f.default_factory is not MISSING)


def load_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> DaemonConfig:
    """Defaults ← TOML file ← environment ← ``overrides`` (``section__key=value`` or top-level keys)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{path}: {error}") from error
    for name, value in (environ if environ is not None else os.environ).items():
        if name.startswith(ENV_PREFIX) and name not in NOT_SETTINGS:
            key = name[len(ENV_PREFIX) :].lower()
            section, _, rest = key.partition("_")
            _set(data, (section, rest) if section in SECTIONS else (key,), _Text(value))
    for key, value in overrides.items():
        if value is not None:
            _set(data, tuple(key.split("__", 1)), value)
    return _build(DaemonConfig, data, "")


def _set(data: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    if len(key) == 2:
        data.setdefault(key[0], {})[key[1]] = value
    else:
        data[key[0]] = value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{where or 'config'}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        key = f"{where}.{name}" if where else name
        if hasattr(default, "__dataclass_fields__"):
            values[name] = _build(type(default), value, key)
        else:
            values[name] = _coerce(value, default, key)
    try:
        return replace(cls(), **values)
    except ValueError as error:
        raise ConfigError(f"{where or 'config'}: {error}") from error


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Convert strings from the environment or CLI to the type of the default; refuse anything else. A type
    with a ``parse`` class method (e.g. a true/false/auto switch) parses its own values."""
    kind = type(default)
    parse = getattr(kind, "parse", None)
    if parse is not None:
        try:
            return parse(value)
        except ValueError as error:
            raise ConfigError(f"{key}: {error}") from None
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                return value.lower() in ("1", "true", "yes", "on")
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ValueError
            return dict(value)
        if kind is tuple:
            if isinstance(value, _Text):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError
        if kind in (int, float):
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return kind(value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        expected = "a list of strings" if kind is tuple else kind.__name__
        raise ConfigError(f"{key}: expected {expected}, got {value!r}") from None
    raise ConfigError(f"{key}: unsupported setting type {kind.__name__}")
