"""Log set-up shared by the daemon and its worker processes: plain or JSON-lines records on stderr."""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """One JSON object per log record, for journald and log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "process": record.processName,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str | int, json_logs: bool) -> None:
    """Plain or JSON-lines logs on stderr; the process name tells workers of a sharded daemon apart."""
    handler = logging.StreamHandler(sys.stderr)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if json_logs else plain)
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level, handlers=[handler], force=True)
