"""JSON log lines: one object a line, the standard fields, and what the call gave with extra=."""

from __future__ import annotations

import json
import logging
import sys

from pipeline.operate.logs import JsonFormatter


def record(msg: str, *args: object, extra: dict[str, object] | None = None) -> logging.LogRecord:
    logger = logging.getLogger("pipeline.server.runner")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None, extra=extra)


def test_a_line_is_one_object_with_the_standard_fields_and_the_extras():
    line = JsonFormatter().format(record("ticks %d | tick p99 %.2f ms", 40, 8.5,
                                         extra={"event": "summary", "tick": 41, "stage": None}))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed.pop("time").endswith("Z")
    assert parsed == {"level": "info", "logger": "pipeline.server.runner", "message": "ticks 40 | tick p99 8.50 ms",
                      "event": "summary", "tick": 41}


def test_an_exception_travels_inside_the_line():
    try:
        raise ValueError("inner")
    except ValueError:
        failed = record("it failed\nacross lines")
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "it failed\nacross lines"
    assert "ValueError: inner" in parsed["exception"]
