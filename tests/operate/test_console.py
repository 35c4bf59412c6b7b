"""The console, seen as an operator sees it: a real server, embedded PostgreSQL, headless Chromium.

The server plays the tiny example's batches (so the log holds commands and
snapshots every 10 ticks) and keeps ticking. What the page shows is checked
against what `fluxworld replay` computes from the same files: where the map
draws each entity, and the hash of a past tick. Screenshots are kept under
test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from playwright.async_api import Page, async_playwright

from pipeline.__main__ import cli
from pipeline.formats.worldfile import load_world
from pipeline.operate.mapframe import DEAD, ONLINE, decode_frame, encode_frame
from pipeline.operate.token import TOKEN_FILE, admin_token
from schema._generated.layout import ENTITY_DTYPE
from tests.operate.scraping import Lines, get, samples, value
from vocabulary.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORLD, BATCHES = EXAMPLES / "tiny.world.json", EXAMPLES / "tiny.batches.jsonl"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
COLOURS = {"player": (0x25, 0x63, 0xEB), "npc": (0xDC, 0x26, 0x26), "gold": (0xD4, 0xA0, 0x17)}


# --- the parts, one by one --------------------------------------------------------------------

def test_the_admin_token_is_made_once_for_its_owner_only(tmp_path: Path) -> None:
    token = admin_token(tmp_path / "state")
    path = tmp_path / "state" / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) >= 32
    assert admin_token(tmp_path / "state") == token
    path.chmod(0o644)
    with pytest.raises(InputError, match="readable by others"):
        admin_token(tmp_path / "state")


def test_a_frame_carries_every_entity_where_the_world_has_it() -> None:
    world = load_world(WORLD)
    header, entities = decode_frame(encode_frame({"tick": world.tick}, world.entities))
    records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
    assert header == {"tick": world.tick}
    for name in ("id", "zone", "x", "y", "hp", "kind", "item_type"):
        assert (entities[name] == records[name]).all(), name
    assert ((entities["flags"] & ONLINE) > 0).tolist() == (records["online"] == 1).tolist()
    assert ((entities["flags"] & DEAD) > 0).tolist() == ((records["hp"] <= 0) & (records["kind"] != 2)).tolist()


# --- a running server ------------------------------------------------------------------------

class Server:
    def __init__(self, port: int, token: str, lines: Lines) -> None:
        self.port, self.token, self.lines = port, token, lines

    def api(self, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return body if response.headers["Content-Type"] == "application/octet-stream" else json.loads(body)


@pytest.fixture
def server(fresh_dsn: str, tmp_path: Path) -> Iterator[Server]:
    env = {**os.environ, "FLUXWORLD_STATE_DIR": str(tmp_path / "state")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "serve", "--db", fresh_dsn, "--world", str(WORLD), "--drive",
         str(BATCHES), "--ticks", "100000", "--no-xmpp", "--http", "127.0.0.1:0", "--log-format", "json",
         "--checkpoint-every", "10", "--summary-every", "0.5"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    lines = Lines(process.stderr)
    try:
        port = lines.until(lambda r: r.get("event") == "http")["port"]
        lines.until(lambda r: r.get("event") == "recovered")
        yield Server(port, (tmp_path / "state" / TOKEN_FILE).read_text().strip(), lines)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("replay")
    result = CliRunner().invoke(cli, ["replay", str(WORLD), str(BATCHES), "--json", "--dump-state",
                                      str(out / "final.world.json")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    report["final"] = load_world(out / "final.world.json")
    return dict(report)


def test_without_the_token_the_console_and_its_api_answer_401(server: Server) -> None:
    for path in ("/console", "/console/console.js", "/console/api/world", "/console/api/live",
                 "/console/api/entity/1", "/console/api/past/1", "/console/api/diff?a=1&b=2"):
        assert get(server.port, path)[0] == 401, path
    assert get(server.port, f"/console/api/world?token={server.token}x")[0] == 401
    assert get(server.port, "/metrics")[0] == 200                 # scrapers need no token
    assert server.api("/console/api/world")["zones"]


def test_the_api_rebuilds_a_past_tick_with_its_logged_hash(server: Server, replayed: dict[str, Any]) -> None:
    server.lines.until(lambda r: r.get("event") == "summary" and r["tick"] > 40)
    span = server.api("/console/api/world")["span"]
    assert span[0] == 0 and span[1] > 40                           # covered from the seed
    for tick in (10, 15, 30):
        header, entities = decode_frame(server.api(f"/console/api/past/{tick}"))
        assert header["tick"] == tick
        assert header["hash"] == header["logged_hash"] == replayed["hashes"][tick - 1]
    final = np.frombuffer(replayed["final"].entities, dtype=ENTITY_DTYPE)
    last = len(replayed["hashes"])                                  # the driven ticks' last
    header, entities = decode_frame(server.api(f"/console/api/past/{last}"))
    assert entities["id"].tolist() == final["id"].tolist() and entities["x"].tolist() == final["x"].tolist()
    changes = server.api("/console/api/diff?a=10&b=30")["changes"]
    assert changes and all(c["change"] in ("added", "removed", "changed") for c in changes)
    record = server.api(f"/console/api/entity/1?tick={last}")["record"]
    assert (record["x"], record["y"]) == (int(final[final["id"] == 1]["x"][0]), int(final[final["id"] == 1]["y"][0]))
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.api("/console/api/past/999999")
    assert refused.value.code == 400 and "not covered" in refused.value.read().decode()


def test_an_entitys_panel_lists_its_recent_commands_and_effects(server: Server) -> None:
    server.lines.until(lambda r: r.get("event") == "summary" and r["tick"] > 40)    # past the driven ticks
    driven = [json.loads(line) for line in BATCHES.read_text().splitlines()]
    player = driven[0]["commands"][0]["player"]
    mine = [(b["tick"], c["seq"]) for b in driven for c in b["commands"] if c["player"] == player]
    panel = server.api(f"/console/api/entity/{player}")
    assert panel["record"]["id"] == player and panel["record"]["kind"] == "player"
    assert [(c["tick"], c["seq"]) for c in panel["commands"]] == mine[::-1][:50]
    assert panel["effects"] and all(player in (e.get("player"), e.get("from"), e.get("entity"), e.get("by"))
                                    or player in e.get("recipients", ()) for e in panel["effects"])


# --- the page in a real browser ----------------------------------------------------------------

@pytest.fixture
async def page() -> AsyncIterator[Page]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (make system installs it)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = await browser.new_page(viewport={"width": 1400, "height": 1100})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        await browser.close()
        assert not errors, errors


async def pixel(page: Page, x: float, y: float) -> tuple[int, int, int]:
    rgb = await page.evaluate("""([x, y]) => {
        const c = document.getElementById('map'), r = window.devicePixelRatio || 1;
        return Array.from(c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data);
    }""", [x, y])
    return rgb[0], rgb[1], rgb[2]


async def test_the_page_draws_the_world_selects_and_travels_in_time(server: Server, page: Page,
                                                                     replayed: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server.lines.until(lambda r: r.get("event") == "summary" and r["tick"] > 40)
    await page.goto(f"http://127.0.0.1:{server.port}/console?token={server.token}")
    assert page.url.endswith("/console")                           # the token left the address bar
    await page.wait_for_function("window.fluxworld.frames >= 2", timeout=20_000)

    # Live frames at 5 Hz: at least 4 a second.
    before = await page.evaluate("window.fluxworld.frames")
    await asyncio.sleep(2.0)
    assert await page.evaluate("window.fluxworld.frames") - before >= 8
    assert value(samples(get(server.port, "/metrics")[1]), "fluxworld_console_seconds_total") > 0

    # The map draws each entity of the zone shown where the world has it, in its kind's colour.
    world = server.api("/console/api/world")
    _, live = decode_frame(server.api(f"/console/api/past/{world['span'][1]}"))
    place = await page.evaluate("window.fluxworld.place")
    drawn_tick = await page.evaluate("window.fluxworld.drawnTick")
    assert drawn_tick >= world["span"][1] - 20
    zone = place["zone"]["id"]
    cells: dict[tuple[int, int], list[Any]] = {}
    for e in live[live["zone"] == zone]:
        cells.setdefault((int(e["x"]), int(e["y"])), []).append(e)
    checked = 0
    for (x, y), here in cells.items():
        if len(here) != 1 or here[0]["flags"] & DEAD:
            continue
        e = here[0]
        kind = {0: "player", 1: "npc", 2: "gold"}[int(e["kind"])]
        if kind == "player" and not e["flags"] & ONLINE or kind == "gold" and int(e["item_type"]) != 1:
            continue
        px, py = (x + 0.5) * place["cell"], (y + 0.5) * place["cell"]
        assert await pixel(page, px, py) == COLOURS[kind], (int(e["id"]), kind, x, y)
        checked += 1
    assert checked >= 2
    await page.screenshot(path=ARTIFACTS / "live.png", full_page=True)

    # Clicking an entity selects it and shows its record.
    drawn = await page.evaluate("window.fluxworld.drawn")
    target = next(d for d in drawn if d["kind"] == "npc" and not any(    # one alone where it is drawn
        o is not d and abs(o["px"] - d["px"]) < 12 and abs(o["py"] - d["py"]) < 12 for o in drawn))
    box = await page.locator("#map").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + target["px"], box["y"] + target["py"])
    await page.wait_for_function(f"document.getElementById('selected').textContent === '{target['id']}'")
    await page.wait_for_function("document.querySelectorAll('#record tr').length > 10")
    assert "npc" in await page.inner_text("#record")

    # Time travel: a past tick, its rebuilt hash beside the logged one (and replay's).
    await page.fill("#goto", "15")
    await page.dispatch_event("#goto", "change")
    await page.wait_for_function("document.getElementById('hashes').dataset.tick === '15'", timeout=30_000)
    assert await page.get_attribute("#hashes", "data-same") == "true"
    assert replayed["hashes"][14] in await page.inner_text("#hashes")
    assert "past" in await page.inner_text("#mode")
    await page.click("#mark")
    await page.click("#forward")
    await page.wait_for_function("document.getElementById('hashes').dataset.tick === '16'", timeout=30_000)
    assert replayed["hashes"][15] in await page.inner_text("#hashes")
    await page.click("#diff")
    await page.wait_for_function("document.querySelectorAll('#diffout tr').length >= 1")
    assert "between ticks 15 and 16" in await page.inner_text("#diffout")
    await page.screenshot(path=ARTIFACTS / "past.png", full_page=True)
    await page.click("#live")
    await page.wait_for_function("!document.getElementById('mode').textContent.startsWith('past')")


# --- a stored world, no server running ---------------------------------------------------------

def test_console_serves_a_stored_world_without_a_server(fresh_dsn: str, tmp_path: Path,
                                                        replayed: dict[str, Any]) -> None:
    env = {**os.environ, "FLUXWORLD_STATE_DIR": str(tmp_path / "state")}
    served = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--db", fresh_dsn, "--world", str(WORLD),
                             "--drive", str(BATCHES), "--no-xmpp", "--http", "off", "--checkpoint-every", "10"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert served.returncode == 0, served.stderr
    console = subprocess.Popen([sys.executable, "-m", "pipeline", "console", "--db", fresh_dsn, "--http",
                                "127.0.0.1:0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "console of the stored world" not in line:
            line = console.stderr.readline() if console.stderr else ""
            assert line, "the console exited"
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        server = Server(port, (tmp_path / "state" / TOKEN_FILE).read_text().strip(), Lines(console.stderr))
        assert get(port, "/console/api/world")[0] == 401
        world = server.api("/console/api/world")
        last = len(replayed["hashes"])
        assert (world["mode"], world["tick"], world["hash"]) == ("stored", last, replayed["final_hash"])
        assert world["span"] == [0, last]
        header, _ = decode_frame(server.api("/console/api/past/20"))
        assert header["hash"] == header["logged_hash"] == replayed["hashes"][19]
        driven = [json.loads(line) for line in BATCHES.read_text().splitlines()]
        player = driven[0]["commands"][0]["player"]
        panel = server.api(f"/console/api/entity/{player}")
        assert [c["seq"] for c in panel["commands"]] == \
            [c["seq"] for b in driven for c in b["commands"] if c["player"] == player][::-1][:50]
    finally:
        console.send_signal(signal.SIGTERM)
        assert console.wait(timeout=30) == 0


def test_the_vendored_chart_library_is_as_fetched() -> None:
    """pipeline/operate/static/vendor/README.md names each vendored file's hash: an edit by hand fails here."""
    import hashlib

    vendor = Path(__file__).resolve().parents[2] / "pipeline" / "operate" / "static" / "vendor"
    rows = [line.split("|") for line in (vendor / "README.md").read_text().splitlines() if line.startswith("| uPlot")]
    assert len(rows) == 3
    for row in rows:
        name, digest = row[1].strip(), row[3].strip()
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
