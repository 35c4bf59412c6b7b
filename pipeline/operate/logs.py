"""Log lines as text (for people) or as one JSON object a line (for log collectors).

A JSON line carries `time` (UTC, ISO 8601, milliseconds), `level`, `logger`
and `message`, then whatever fields the log call gave with `extra=` (the
tick loop's summary gives `event`, `tick` and its figures; outages and
recovery give `event` and `tick`; a stage's error gives `stage`), and an
`exception` with the traceback when there is one. The few lines of
Formatter below are all it takes, so no library (python-json-logger) is
added for it; they also know which record attributes are the logging
module's own and leave them out.

The format is chosen by `fluxworld serve --log-format` or by
$FLUXWORLD_LOG_FORMAT, which serve sets so that the processes it starts
(the XMPP gateway) log the same way to the same stream.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

ENV = "FLUXWORLD_LOG_FORMAT"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
_OWN = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _OWN and value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


def log_format() -> str:
    """The format asked for in the environment (text unless it says json)."""
    return "json" if os.environ.get(ENV) == "json" else "text"


class _Stderr(logging.StreamHandler[TextIO]):
    """The handler setup_logging installs (use_format finds it by its class)."""


def setup_logging(level: int) -> None:
    """As logging.basicConfig: one handler on stderr in the environment's format, unless the root
    logger has handlers already (a test runner's capture, which must stay)."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(_Stderr(sys.stderr))
    root.setLevel(level)
    _apply(log_format())


def use_format(fmt: str) -> None:
    """Log in `fmt` from now on, and have child processes do so too (they read the environment)."""
    os.environ[ENV] = fmt
    _apply(fmt)


def _apply(fmt: str) -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _Stderr):
            handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.captureWarnings(fmt == "json")     # a warnings.warn would otherwise print a line of its own
