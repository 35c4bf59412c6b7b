"""Seeing and operating a running server: its HTTP side, its readiness, its logs, its console.

`state.py` is what a running `fluxworld serve` lets be read; `scrape.py`
turns live state into Prometheus metrics at scrape time; `health.py` says
whether the server is ready; `http.py` serves them (aiohttp, on the
server's own event loop); `logs.py` formats log lines as text or JSON.

The browser console: `console.py` (its routes) behind `token.py` (the admin
token), drawing `mapframe.py` frames, with `recent.py` (the last ticks'
commands and effects, chart figures); `timetravel.py` rebuilds past worlds
in the process of `timetravel_worker.py`; `stored.py` serves the console of
a stored world (`fluxworld console`); `static/` is the page.
docs/operate.md describes what is served.
"""
