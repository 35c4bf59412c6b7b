"""Helpers for tests of the HTTP side: GET a path, read a Prometheus page into numbers, follow a log."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of GET http://127.0.0.1:port/path; 503 and friends are answers, not errors."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ready(port: int) -> tuple[int, dict[str, Any]]:
    status, body = get(port, "/health/ready")
    return status, json.loads(body)


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(page) for s in family.samples}


def value(page_samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return page_samples[(name, tuple(sorted(labels.items())))]


async def aget(port: int, path: str) -> tuple[int, str]:
    """get() for a test whose own event loop runs the server (a blocking urlopen would stall it)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status, await r.text()


async def aready(port: int) -> tuple[int, dict[str, Any]]:
    status, body = await aget(port, "/health/ready")
    return status, json.loads(body)


class Lines:
    """A process's stderr, line by line, read on a thread so the test can wait with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def until(self, found: Any, timeout: float = 60.0) -> dict[str, Any]:
        """The first JSON line for which `found(line)` holds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._queue.get(timeout=left)
            assert line is not None, "the server exited:\n" + "".join(self.seen)
            self.seen.append(line)
            record = json.loads(line)
            if found(record):
                return dict(record)
        raise AssertionError("not logged in time:\n" + "".join(self.seen))

    def rest(self) -> list[str]:
        while (line := self._queue.get(timeout=30)) is not None:
            self.seen.append(line)
        return self.seen
