"""A swarm of XMPP bots in worker processes: log in, send commands, time the answers.

    spec = SwarmSpec("127.0.0.1", c2s_port, domain, target=component, accounts=..., seconds=5, rate=None)
    result = await run_swarm(spec, progress=print)

Each worker process (spawned, for the reasons loadtest/echo.py gives) runs
one asyncio loop with its share of the bots, each on a minimal XMPP client
of our own (loadtest/wire.py: PLAIN on plain loopback TCP, messages parsed
by expat; lighter than slixmpp's ClientXMPP, which the bots used before).
Every bot logs in, and for the world joins and hears so, before the clock
starts. Then each sends `<command xmlns=COMMAND_NS op= seq=/>` with its own
strictly increasing seq, closed loop (`window` outstanding) or open loop
(Poisson arrivals at `rate` a second). An answer completes seqs: from the
world `<update acked=S>` every outstanding seq <= S and `<refused seq=S>`
that one (as refused, not timed); from the echo, the echoed command.

The first `flooders` accounts flood instead: each keeps FLOOD_WINDOW
commands outstanding whatever the pace it is allowed, sending again on
every answer or refusal. Their answers are counted apart and never timed,
so the latencies are those of the players who keep to the rules. When the
clock stops they wait (up to FLOOD_DRAIN) for the answers to what the XMPP
server still holds of their flood, so every command sent is accounted.

Workers talk to the parent over one Queue: ("ready", w, login_s), then
("interval", w, t, sent, answered) each second, then ("done", w, totals)
or ("error", w, message). run_swarm is async and reads the queue from a
thread, so the event loop it shares with the world server keeps ticking.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.process
import multiprocessing.queues
import queue
import random
import time
import xml.etree.ElementTree as ET
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from pipeline.xmpp.protocol import COMMAND_NS, UPDATE_NS, read_left, read_seen
from vocabulary.errors import FluxworldError, XmppError

from .breakdown import Acks
from .wire import WireClient

LOGIN_TIMEOUT = 60.0    # every bot of a worker connected, authenticated (and joined)
LOGINS_AT_ONCE = 200
SPAWN_TIMEOUT = 30.0    # a worker process started and imported its modules
DRAIN = 2.0             # after the clock: how long answers to outstanding commands are awaited
DISCONNECT = 2.0
INTERVAL = 1.0          # timeline resolution, seconds
POLL = 0.2              # how often the parent looks at its workers
# Commands a flooding bot keeps outstanding: five times what the XMPP server lets a client send
# at once (pipeline/xmpp/prosody.py CLIENT_RATE, CLIENT_BURST), so it always presses on the limit.
FLOOD_WINDOW = 200
# What a flood has sent waits unread at the server's edge and is read at a client's rate: up to
# FLOOD_WINDOW commands of ~200 bytes at 4 kB/s, 10 s.
FLOOD_DRAIN = 20.0
SAY = ("hello", "over here", "rat!", "gold nearby", "follow me", "brb")

_UPDATE, _REFUSED, _COMMAND = f"{{{UPDATE_NS}}}update", f"{{{UPDATE_NS}}}refused", f"{{{COMMAND_NS}}}command"
_SEEN, _LEFT, _REJECTED = f"{{{UPDATE_NS}}}seen", f"{{{UPDATE_NS}}}left", f"{{{UPDATE_NS}}}rejected"
_GONE = frozenset({"no_target", "no_item", "out_of_range"})   # a target we should stop chasing


class SwarmError(FluxworldError):
    """A bot worker failed (login, the server, or a bug); the message says which and why."""


@dataclass(frozen=True)
class SwarmSpec:
    host: str
    port: int               # the XMPP server's c2s port
    domain: str
    target: str             # the component JID: the world's or the echo's
    accounts: tuple[tuple[str, str], ...]    # (local name, password), already created
    seconds: float
    rate: float | None      # commands/s per bot, open loop (Poisson); None = closed loop
    window: int = 8         # closed loop: commands outstanding per bot
    workload: str = "mmo"   # "mmo": join the world and play; "echo": the same payloads, no join
    processes: int = 1
    seed: int = 1
    flooders: int = 0       # the first accounts flood (module docstring)
    # Further XMPP servers, each (c2s port, domain, target) on `host`: account k logs in to server
    # k % (1 + len(more_servers)), the first being (port, domain, target).
    more_servers: tuple[tuple[int, str, str], ...] = ()

    def server_of(self, account: int) -> tuple[int, str, str]:
        servers = ((self.port, self.domain, self.target), *self.more_servers)
        return servers[account % len(servers)]


async def run_swarm(spec: SwarmSpec, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the swarm to the end; `progress` gets each timeline entry {"t", "sent", "answered"}
    once every worker has reported it. Raises SwarmError when a worker fails."""
    if not spec.accounts or spec.workload not in ("mmo", "echo") or (spec.rate is not None and spec.rate <= 0):
        raise SwarmError(f"a swarm needs accounts, workload mmo or echo and a rate above 0 or None; got "
                         f"{len(spec.accounts)} accounts, {spec.workload!r} and {spec.rate}")
    context = multiprocessing.get_context("spawn")
    inbox: multiprocessing.queues.Queue[tuple[Any, ...]] = context.Queue()
    go, start_at = context.Event(), context.Value("d", 0.0)
    shares = [spec.accounts[w::spec.processes] for w in range(min(spec.processes, len(spec.accounts)))]
    workers = [context.Process(target=_work, args=(spec, w, share, inbox, go, start_at), daemon=True,
                               name=f"fluxworld-bots-{w}") for w, share in enumerate(shares)]
    for process in workers:
        process.start()
    mail = _Mailbox(inbox, workers)
    try:
        login = [m[2] for m in await mail.collect("ready", SPAWN_TIMEOUT + LOGIN_TIMEOUT)]
        start_at.value = time.monotonic() + 0.1     # one start for all, so intervals line up
        go.set()
        done = await mail.collect("done", spec.seconds + DRAIN + DISCONNECT + SPAWN_TIMEOUT, progress)
    finally:
        await asyncio.to_thread(_reap, workers, len(mail.finished) < len(workers))
    totals = [m[2] for m in done]
    latencies = sorted(x for t in totals for x in t["latencies"])
    answered_in_window = sum(t["answered_in_window"] for t in totals)
    return {"bots": len(spec.accounts), "login_s": max(login), "seconds": spec.seconds,
            **{k: sum(t[k] for t in totals) for k in ("sent", "answered", "refused", "rejected", "unanswered",
                                                       "flood_sent", "flood_answered", "flood_refused")},
            "round_trips_per_s": answered_in_window / spec.seconds, "latency_ms": summarize(latencies),
            "timeline": mail.timeline, "cpu_s": sum(t["cpu_s"] for t in totals),
            "acks": Acks(*(np.concatenate([np.frombuffer(t[k], dtype=d) for t in totals])
                           for k, d in (("acked_sent", "f8"), ("latencies", "f8"), ("acked_ticks", "i8"))))}


def summarize(ordered: list[float]) -> dict[str, float]:
    """count, nearest-rank p50/p90/p99 and max of sorted latencies."""
    if not ordered:
        return {"count": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    rank = {q: ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * q // 100) - 1))] for q in (50, 90, 99)}
    return {"count": len(ordered), "p50": rank[50], "p90": rank[90], "p99": rank[99], "max": ordered[-1]}


class _Mailbox:
    """The parent's end of the queue: waits without blocking the loop, notices dead workers."""

    def __init__(self, inbox: multiprocessing.queues.Queue[tuple[Any, ...]],
                 workers: Sequence[multiprocessing.process.BaseProcess]) -> None:
        self.inbox, self.workers = inbox, workers
        self.finished: set[int] = set()
        self.timeline: list[dict[str, Any]] = []
        self._intervals: dict[float, list[tuple[int, int]]] = {}

    async def collect(self, kind: str, timeout: float,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> list[tuple[Any, ...]]:
        """One `kind` message from every worker, in worker order; intervals meanwhile go to the timeline."""
        got: dict[int, tuple[Any, ...]] = {}
        deadline, dead_before = time.monotonic() + timeout, set[int]()
        while len(got) < len(self.workers):
            try:
                message = await asyncio.to_thread(self.inbox.get, True, POLL)
            except queue.Empty:
                # A worker that exited put its last words in the queue first: only one found dead
                # at two polls in a row, with nothing from it between, died without them.
                dead = {w for w, p in enumerate(self.workers) if p.exitcode is not None and w not in got}
                if dead & dead_before:
                    w = min(dead & dead_before)
                    raise SwarmError(f"bot worker {w} exited (code {self.workers[w].exitcode}) without a word")
                dead_before = dead
                if time.monotonic() > deadline:
                    raise SwarmError(f"{len(self.workers) - len(got)} bot workers sent no {kind!r} "
                                     f"within {timeout:g} s") from None
                continue
            if message[0] == "error":
                raise SwarmError(f"bot worker {message[1]}: {message[2]}")
            if message[0] == "interval":
                self._interval(message[1], message[2], message[3], message[4], progress)
            elif message[0] == kind:
                got[message[1]] = message
                if kind == "done":
                    self.finished.add(message[1])
        return [got[w] for w in sorted(got)]

    def _interval(self, worker: int, t: float, sent: int, answered: int,
                  progress: Callable[[dict[str, Any]], None] | None) -> None:
        parts = self._intervals.setdefault(t, [])
        parts.append((sent, answered))
        if len(parts) == len(self.workers):
            entry = {"t": t, "sent": sum(p[0] for p in parts), "answered": sum(p[1] for p in parts)}
            self.timeline.append(entry)
            if progress is not None:
                progress(entry)


def _reap(workers: Sequence[multiprocessing.process.BaseProcess], failed: bool) -> None:
    for process in workers:
        if failed and process.is_alive():
            process.terminate()
        process.join(DISCONNECT + 3.0)
        if process.is_alive():
            process.kill()
            process.join()


# ---------------------------------------------------------------- in the worker processes

def _work(spec: SwarmSpec, index: int, accounts: tuple[tuple[str, str], ...],
          outbox: multiprocessing.queues.Queue[tuple[Any, ...]], go: Any, start_at: Any) -> None:
    async def main() -> None:
        await _Worker(spec, index, accounts, outbox).run(go, start_at)     # clients want a running loop

    try:
        asyncio.run(main())
    except BaseException as e:      # whatever it was, the parent gets the reason rather than a timeout
        outbox.put(("error", index, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__))


class _Worker:
    def __init__(self, spec: SwarmSpec, index: int, accounts: tuple[tuple[str, str], ...],
                 outbox: multiprocessing.queues.Queue[tuple[Any, ...]]) -> None:
        self.spec, self.index, self.outbox = spec, index, outbox
        self.sending = False
        self.sent = self.answered = self.refused = self.rejected = 0
        self.flood_sent = self.flood_answered = self.flood_refused = 0
        self.latencies = array("d")     # ms; compact to send to the parent
        self.acked_sent = array("d")    # beside each latency: when its command was sent (time.monotonic())
        self.acked_ticks = array("q")   # and the tick that acknowledged it (-1 from the echo)
        # Microseconds since the epoch: above every seq an earlier run gave these players.
        first_seq = time.time_ns() // 1000
        flooders = {name for name, _ in spec.accounts[:spec.flooders]}
        number = {name: k for k, (name, _) in enumerate(spec.accounts)}
        self.bots = [_Bot(self, name, password, first_seq, spec.server_of(number[name]), flooding=name in flooders)
                     for name, password in accounts]

    async def run(self, go: Any, start_at: Any) -> None:
        began = time.monotonic()
        # Thousands of logins at once make Prosody fail some (PLAIN against hashed passwords is
        # PBKDF2 in Lua): a few hundred at a time all get in, and no slower.
        logins = asyncio.Semaphore(LOGINS_AT_ONCE)

        async def login(bot: _Bot) -> None:
            async with logins:
                await bot.login()
        try:
            await asyncio.wait_for(asyncio.gather(*(login(bot) for bot in self.bots)), LOGIN_TIMEOUT)
        except asyncio.TimeoutError:
            ready = sum(bot.logged_in for bot in self.bots)
            raise SwarmError(f"{ready} of {len(self.bots)} bots logged in and joined within {LOGIN_TIMEOUT:g} s"
                             ) from None
        self.outbox.put(("ready", self.index, time.monotonic() - began))
        if not await asyncio.to_thread(go.wait, SPAWN_TIMEOUT + LOGIN_TIMEOUT):
            raise SwarmError("the clock never started")
        start = start_at.value
        await asyncio.sleep(start - time.monotonic())
        cpu = time.process_time()
        self.sending = True
        rate = self.spec.rate
        senders = [asyncio.create_task(bot.open_loop(rate, start + self.spec.seconds))
                   for bot in self.bots if rate and not bot.flooding]
        for bot in self.bots:
            if bot.flooding or not rate:
                bot.fill()
        await self._intervals(start)
        self.sending = False
        cpu = time.process_time() - cpu
        answered_in_window = self.answered
        deadline = time.monotonic() + DRAIN
        flood_deadline = deadline + (FLOOD_DRAIN if any(bot.flooding for bot in self.bots) else 0.0)

        def waiting() -> bool:
            now = time.monotonic()
            return (now < deadline and self.sent > self.answered + self.refused) or \
                (now < flood_deadline and self.flood_sent > self.flood_answered + self.flood_refused)
        while waiting():
            await asyncio.sleep(0.02)
        for task in senders:
            task.cancel()
        await self._leave()
        self.outbox.put(("done", self.index, {
            "sent": self.sent, "answered": self.answered, "refused": self.refused, "rejected": self.rejected,
            "unanswered": self.sent - self.answered - self.refused, "answered_in_window": answered_in_window,
            "flood_sent": self.flood_sent, "flood_answered": self.flood_answered, "flood_refused": self.flood_refused,
            "latencies": self.latencies, "acked_sent": self.acked_sent, "acked_ticks": self.acked_ticks,
            "cpu_s": cpu}))

    async def _intervals(self, start: float) -> None:
        k, sent, answered = 0, 0, 0
        while k * INTERVAL < self.spec.seconds:
            k += 1
            t = min(k * INTERVAL, self.spec.seconds)
            await asyncio.sleep(start + t - time.monotonic())
            self.outbox.put(("interval", self.index, t, self.sent - sent, self.answered - answered))
            sent, answered = self.sent, self.answered

    async def _leave(self) -> None:
        for bot in self.bots:
            if self.spec.workload == "mmo" and bot.client.open:
                bot.client.send(f"<presence to={quoteattr(bot.target)} type='unavailable'/>")      # leave the world
        closing = [asyncio.ensure_future(bot.client.close(DISCONNECT)) for bot in self.bots]
        await asyncio.wait(closing, timeout=DISCONNECT + 1.0)      # a hung server must not hang us


class _Bot:
    """One player: its client, its outstanding seqs, and what it saw of the world (mmo)."""

    def __init__(self, worker: _Worker, name: str, password: str, seq: int, server: tuple[int, str, str],
                 flooding: bool = False) -> None:
        self.worker, self.spec, self.name, self.seq = worker, worker.spec, name.lower(), seq
        self.port, self.domain, self.target = server
        self.flooding = flooding
        self.window = FLOOD_WINDOW if flooding else self.spec.window
        self.rng = random.Random(f"{worker.spec.seed}:{name}")
        self.password = password
        self.client = WireClient(self._on_message)     # every message, body or not
        self.joined = asyncio.Event()
        self.logged_in = False
        self.sent_at: dict[int, float] = {}     # seq -> time.monotonic() when sent, until answered
        self.order: deque[int] = deque()        # the same seqs in sending order (acks complete a prefix)
        self.me: dict[str, Any] = {}            # its own entity, as the world last showed it
        self.focus: tuple[int, str, int, int] | None = None    # the npc or item it goes after: id kind x y
        self.targets: dict[int, int] = {}       # seq of an attack or pickup -> its target

    async def login(self) -> None:
        try:
            await self.client.login(self.spec.host, self.port, self.domain, self.name, self.password)
        except XmppError as e:
            raise SwarmError(f"bot {self.name}: {e}") from None
        self.client.send("<presence/>")     # available to its server: messages to the bare JID reach it
        if self.spec.workload == "mmo":
            self.client.send(f"<presence to={quoteattr(self.target)}/>")   # joins; its first update says so
            await self.joined.wait()
        self.logged_in = True

    # ------------------------------------------------------------ out

    async def open_loop(self, rate: float, end: float) -> None:
        at = time.monotonic()
        while True:
            at += self.rng.expovariate(rate)
            if at >= end:
                return
            await asyncio.sleep(at - time.monotonic())
            self.send()

    def fill(self) -> None:
        while self.worker.sending and len(self.sent_at) < self.window:
            self.send()

    def send(self) -> None:
        if not self.client.open:
            return      # the connection dropped: nothing is sent, nothing counted
        self.seq += 1
        op, attrs, text = self._choose()
        # Raw XML straight onto the socket: stanza objects would cost the bots more CPU than Prosody.
        self.client.send(f'<message to="{self.target}" type="chat"><command xmlns="{COMMAND_NS}" '
                         f'op="{op}" seq="{self.seq}"{attrs}' + (f">{escape(text)}</command>" if text else "/>")
                         + "</message>")
        self.sent_at[self.seq] = time.monotonic()
        self.order.append(self.seq)
        if self.flooding:
            self.worker.flood_sent += 1
        else:
            self.worker.sent += 1

    def _choose(self) -> tuple[str, str, str]:
        """The game mix: mostly steps (toward its focus when it has one), some chat and potions,
        attack and pickup only next to their target, so the world rejects little for noise."""
        r, me, focus = self.rng.random(), self.me, self.focus
        alive = me.get("dead") == 0
        if alive and focus is not None:
            fid, kind, fx, fy = focus
            dx, dy = (fx > me["x"]) - (fx < me["x"]), (fy > me["y"]) - (fy < me["y"])
            if max(abs(fx - me["x"]), abs(fy - me["y"])) <= 1 and r < 0.5:
                self.targets[self.seq] = fid
                return ("attack", f' target="{fid}"', "") if kind == "npc" else ("pickup", f' item="{fid}"', "")
            if r < 0.8:
                return "move", f' dx="{dx}" dy="{dy}"', ""
        if r < 0.1 or me.get("dead") == 1:
            return "say", "", self.rng.choice(SAY)
        if r < 0.13 or (alive and me.get("potions", 0) != 0 and r < 0.3):
            return "use", "", ""
        dx, dy = self.rng.choice(((0, -1), (0, 1), (1, 0), (-1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1)))
        return "move", f' dx="{dx}" dy="{dy}"', ""

    # ------------------------------------------------------------ in

    def _on_message(self, xml: ET.Element) -> None:
        now = time.monotonic()
        if xml.get("type") == "error":
            return      # a bounce (the component is not there) carries our command back: not an answer
        update = xml.find(_UPDATE)
        if update is not None:
            self.joined.set()
            self._learn(update)
            acked, tick = update.get("acked"), int(update.get("tick", "-1"))
            while acked is not None and self.order and self.order[0] <= int(acked):
                self._complete(self.order.popleft(), now, tick=tick)
        for refused in xml.iterfind(_REFUSED):
            seq = refused.get("seq")
            if seq is not None:
                self._complete(int(seq), now, refused=True)
        echoed = xml.find(_COMMAND)
        if echoed is not None:
            self._complete(int(echoed.get("seq", "0")), now)
            while self.order and self.order[0] not in self.sent_at:
                self.order.popleft()
        if self.worker.sending and (self.spec.rate is None or self.flooding):
            self.fill()

    def _complete(self, seq: int, now: float, refused: bool = False, tick: int = -1) -> None:
        sent = self.sent_at.pop(seq, None)
        self.targets.pop(seq, None)
        if sent is None:
            return      # not ours (a join presence made), or already refused
        if self.flooding:
            self.worker.flood_refused += refused
            self.worker.flood_answered += not refused
        elif refused:
            self.worker.refused += 1
        else:
            self.worker.answered += 1
            self.worker.latencies.append((now - sent) * 1000.0)
            self.worker.acked_sent.append(sent)
            self.worker.acked_ticks.append(tick)

    def _learn(self, update: Any) -> None:
        for element in update:
            tag, a = element.tag, element.attrib
            if tag == _SEEN:
                for e in read_seen(element.text):
                    if e["kind"] == "player":
                        if e["name"] == self.name:
                            self.me = e
                    elif e.get("dead"):
                        self._forget(e["id"])
                    elif self.focus is None or self.focus[0] == e["id"]:
                        self.focus = (e["id"], e["kind"], e["x"], e["y"])
            elif tag == _LEFT:
                for gone in read_left(element.text):
                    self._forget(gone)
            elif tag == _REJECTED:
                self.worker.rejected += 1
                target = self.targets.get(int(a["seq"]))
                if target is not None and a.get("reason") in _GONE:
                    self._forget(target)

    def _forget(self, entity: int) -> None:
        if self.focus is not None and self.focus[0] == entity:
            self.focus = None
