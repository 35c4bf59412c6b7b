"""Seeing and operating a running server: its HTTP side, its readiness, its logs.

`state.py` is what a running `fluxworld serve` lets be read; `scrape.py`
turns live state into Prometheus metrics at scrape time; `health.py` says
whether the server is ready; `http.py` serves them (aiohttp, on the
server's own event loop); `logs.py` formats log lines as text or JSON.
docs/operate.md describes what is served.
"""
