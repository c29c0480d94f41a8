"""``emoscribe record``: keep the daemon's messages on disk as JSON lines, for offline analysis; never audio.

One file per UTC hour of arrival for all streams together (a call centre has thousands of legs an hour; a file
per leg would mean thousands of open files), named ``emoscribe-YYYYMMDDTHH-NNNN.jsonl``, with a new part
``NNNN`` whenever the next line would take the current file past ``max_file_bytes``; a file holds at least one
line, so a single message larger than the bound gets a file of its own. ``max_total_bytes`` bounds the folder:
the oldest files are deleted to keep under it (the file being written never is). Each line is one message as
the subscriber received it, ``{"topic": ..., "payload": ...}``, the shape ``emoscribe listen --json`` prints;
it is flushed as written, so a crash loses nothing already received. A new run never appends to old files.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer
import zmq

from emoscribe.clients.cli_options import ClientKey, ServerKey, curve_options
from emoscribe.clients.subscriber import Subscriber
from emoscribe.messages import DEFAULT_ENDPOINT

NAME = re.compile(r"^emoscribe-(\d{8}T\d{2})-(\d{4,})\.jsonl$")
MIN_FILE_BYTES = 4096


class RotatingJsonLines:
    """Hourly, size-bounded JSON-lines files in one folder, oldest deleted past a total bound (0: no bound)."""

    def __init__(
        self,
        folder: Path,
        max_file_bytes: int,
        max_total_bytes: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_file_bytes < MIN_FILE_BYTES:
            raise ValueError(f"the file bound must be at least {MIN_FILE_BYTES} bytes, not {max_file_bytes}")
        if max_total_bytes and max_total_bytes < max_file_bytes:
            raise ValueError(
                f"the total bound ({max_total_bytes} bytes) is below the file bound ({max_file_bytes})"
            )
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.max_file = max_file_bytes
        self.max_total = max_total_bytes
        self._clock = clock
        old = sorted((key, path) for path in folder.iterdir() if (key := _order(path)) is not None)
        self._sizes = {path: path.stat().st_size for _, path in old}
        self._total = sum(self._sizes.values())
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._hour = ""
        self.lines = 0
        self.written: list[Path] = []
        self.deleted: list[Path] = []

    @property
    def files(self) -> list[Path]:
        """Every recording file in the folder, oldest first."""
        return list(self._sizes)

    def write(self, topic: str, payload: dict[str, Any]) -> None:
        line = (json.dumps({"topic": topic, "payload": payload}, ensure_ascii=False) + "\n").encode()
        hour = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H")
        file, path = self._file, self._path
        if file is None or path is None or hour != self._hour or self._sizes[path] + len(line) > self.max_file:
            file, path = self._open(hour)
        file.write(line)
        file.flush()
        self._sizes[path] += len(line)
        self._total += len(line)
        self.lines += 1
        if self.max_total:
            self._delete_oldest()

    def _open(self, hour: str) -> tuple[IO[bytes], Path]:
        self.close()
        parts = [int(m.group(2)) for p in self._sizes if (m := NAME.match(p.name)) and m.group(1) == hour]
        path = self.folder / f"emoscribe-{hour}-{max(parts, default=-1) + 1:04d}.jsonl"
        self._file, self._path, self._hour = path.open("xb"), path, hour
        self._sizes[path] = 0
        self.written.append(path)
        return self._file, path

    def _delete_oldest(self) -> None:
        while self._total > self.max_total:
            oldest = next(iter(self._sizes))
            if oldest == self._path:
                return
            oldest.unlink(missing_ok=True)
            self._total -= self._sizes.pop(oldest)
            self.deleted.append(oldest)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _order(path: Path) -> tuple[str, int] | None:
    """Sort key of a recording file (hour, part); ``None`` for anything else in the folder."""
    match = NAME.match(path.name)
    return (match.group(1), int(match.group(2))) if match else None


def record_command(
    out: Annotated[Path, typer.Option(help="Folder for the JSON-lines files (created if missing).")],
    endpoint: Annotated[str, typer.Option(help="The daemon's publisher endpoint.")] = DEFAULT_ENDPOINT,
    topic: Annotated[
        list[str] | None, typer.Option(help="Topic prefix to record (repeat; default: everything).")
    ] = None,
    max_file_mb: Annotated[float, typer.Option(help="Start a new file before one passes this size.")] = 64.0,
    max_total_mb: Annotated[
        float, typer.Option(help="Delete the oldest files past this total (0: keep all).")
    ] = 0,
    count: Annotated[int, typer.Option(help="Exit after this many messages (0: never).")] = 0,
    timeout: Annotated[float, typer.Option(help="Exit after this many seconds without a message (0: never).")] = 0,
    server_key: ServerKey = None,
    client_key: ClientKey = None,
) -> None:
    """Subscribe to a running daemon and write what it publishes to rotating JSON-lines files."""
    try:
        writer = RotatingJsonLines(out, int(max_file_mb * 2**20), int(max_total_mb * 2**20))
        subscriber = Subscriber(endpoint, topic or [""], **curve_options(server_key, client_key))
    except (OSError, ValueError, zmq.ZMQError) as error:
        print(f"emoscribe record: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stopping.append(signum))
    print(f"emoscribe record: recording {endpoint} into {out}", file=sys.stderr, flush=True)
    idle_since = time.monotonic()
    try:
        while not stopping and (count == 0 or writer.lines < count):
            message = subscriber.receive(250)
            if message is not None:
                writer.write(message.topic, message.to_payload())
                idle_since = time.monotonic()
            elif timeout and time.monotonic() - idle_since >= timeout:
                break
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"emoscribe record: cannot write under {out}: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    finally:
        writer.close()
        subscriber.close()
    # With a topic filter a stream's other topics are missing by choice, so gaps mean nothing then.
    lost = f"; lost per stream: {dict(subscriber.gaps)}" if subscriber.gaps and not topic else ""
    print(
        f"emoscribe record: {writer.lines} messages in {len(writer.written)} files under {out}{lost}",
        file=sys.stderr,
    )
