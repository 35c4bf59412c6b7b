"""The load-test bots' XMPP client: only what a bot needs, on plain loopback TCP.

    client = WireClient(on_message)          # on_message(element) for every <message> stanza
    await client.login(host, port, domain, user, password)   # XmppError if it cannot
    client.send("<presence/>")               # raw XML, one transport write per call
    await client.close(wait=2.0)             # </stream:stream>, then the socket, bounded

It does: the stream header, SASL PLAIN, the stream restart and resource
binding; then every top-level stanza, parsed incrementally by expat
(XMLPullParser): a message goes to `on_message` as an ElementTree element;
an iq get or set is answered (a result to a ping, service-unavailable to
anything else) so the server never waits; anything else is ignored. A
stream error, malformed XML or a lost connection closes the connection
(`open` turns false) and nothing more. Reads land in one buffer per thread
(BufferedProtocol): a plain Protocol gets a new 256 kB bytes object a read,
which glibc served here with mmap, mremap and munmap, three system calls.

It does not do: TLS, any SASL mechanism but PLAIN, legacy sessions, stream
management, reconnection, rosters, JIDs, stanza objects, or any check of
what the server sends beyond what login needs. It is meant for the private
Prosody of pipeline/xmpp/prosody.py (no TLS required, plain auth allowed).

Why it exists: the bots share two cores with Prosody and the server under
test, and slixmpp's ClientXMPP is heavy to start and to hold. Measured side
by side (docs/loadtest.md, "Transports"): outside the measured window
(start-up, logins, leaving) the bots cost a third of the CPU they did, and
their worker 57% of the memory; while they play, about the same at 1,000
bots and 17% less at 2,500, since they already bypassed slixmpp for
messages in and commands out. A playing bot's CPU is now expat, its own
logic, asyncio and the kernel.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import xml.etree.ElementTree as ET
from typing import Callable, Iterator, cast
from xml.sax.saxutils import quoteattr

from vocabulary.errors import XmppError

STREAMS, CLIENT = "http://etherx.jabber.org/streams", "jabber:client"
SASL, BIND = "urn:ietf:params:xml:ns:xmpp-sasl", "urn:ietf:params:xml:ns:xmpp-bind"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
_FEATURES, _STREAM_ERROR = f"{{{STREAMS}}}features", f"{{{STREAMS}}}error"
_MESSAGE, _IQ, _PING = f"{{{CLIENT}}}message", f"{{{CLIENT}}}iq", "{urn:xmpp:ping}ping"
_MECHANISM, _SUCCESS, _FAILURE = f"{{{SASL}}}mechanisms/{{{SASL}}}mechanism", f"{{{SASL}}}success", f"{{{SASL}}}failure"
_JID = f"{{{BIND}}}bind/{{{BIND}}}jid"
_CLOSE = b"</stream:stream>"
_Events = Iterator[tuple[str, ET.Element]]     # what read_events() gives for ("start", "end")
READ_SIZE = 64 * 1024
_reads = threading.local()      # .view: the thread's read buffer; each read is parsed before the next


def _read_buffer() -> memoryview:
    if not hasattr(_reads, "view"):
        _reads.view = memoryview(bytearray(READ_SIZE))
    return cast(memoryview, _reads.view)


class WireClient(asyncio.BufferedProtocol):
    """One XMPP client connection (module docstring), used in the thread that made it."""

    def __init__(self, on_message: Callable[[ET.Element], None]) -> None:
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.jid = ""               # the full JID the server bound, once logged in
        self.ended = ""             # why the connection ended, once it has
        self._parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(("start", "end"))
        self._depth = 0
        self._root: ET.Element | None = None
        self._login: asyncio.Queue[ET.Element | None] | None = None    # stanzas for login() until it is done
        self._lost: asyncio.Future[None] | None = None
        self._view = _read_buffer()

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def login(self, host: str, port: int, domain: str, user: str, password: str) -> None:
        """Connect, authenticate and bind; raises XmppError saying why not (the connection closed)."""
        loop = asyncio.get_running_loop()
        self._login, self._lost = asyncio.Queue(), loop.create_future()
        try:
            await loop.create_connection(lambda: self, host, port)
        except OSError as e:
            raise XmppError(f"cannot connect to {host}:{port}: {e}") from None
        try:
            self._open_stream(domain)
            features = await self._next(_FEATURES)
            if "PLAIN" not in (m.text for m in features.iterfind(_MECHANISM)):
                raise XmppError("the server does not offer SASL PLAIN")
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            self.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
            answer = await self._next(_SUCCESS, _FAILURE)
            if answer.tag == _FAILURE:
                raise XmppError(f"authentication failed ({_condition(answer)})")
            self._parser, self._depth = ET.XMLPullParser(("start", "end")), 0   # the server restarts too
            self._open_stream(domain)
            await self._next(_FEATURES)
            self.send(f"<iq type='set' id='bind'><bind xmlns='{BIND}'/></iq>")
            bound = await self._next(_IQ)
            if bound.get("type") != "result":
                raise XmppError(f"resource binding failed: {ET.tostring(bound, encoding='unicode')[:200]}")
            self.jid = bound.findtext(_JID) or ""
        except BaseException:
            self.abort()
            raise
        finally:
            self._login = None

    def send(self, data: str) -> None:
        """Write `data` (XML text) to the socket now; nothing once the connection is gone."""
        if self.transport is not None:
            self.transport.write(data.encode())

    async def close(self, wait: float) -> None:
        """Close the stream and wait up to `wait` s for the server's end of it, then the socket."""
        if self.transport is None or self._lost is None:
            return
        if not self.transport.is_closing():
            self.transport.write(_CLOSE)
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), wait)
        except TimeoutError:
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _open_stream(self, domain: str) -> None:
        self.send(f"<?xml version='1.0'?><stream:stream to={quoteattr(domain)} version='1.0' "
                  f"xmlns='{CLIENT}' xmlns:stream='{STREAMS}'>")

    async def _next(self, *tags: str) -> ET.Element:
        assert self._login is not None
        stanza = await self._login.get()
        if stanza is None:
            raise XmppError(self.ended or "the connection closed")
        if stanza.tag not in tags:
            raise XmppError(f"expected {' or '.join(tags)} from the server, got {stanza.tag}")
        return stanza

    # ------------------------------------------------------------ asyncio.BufferedProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.ended = self.ended or (f"connection lost: {exc}" if exc else "the server closed the connection")
        if self._login is not None:
            self._login.put_nowait(None)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.feed(self._view[:nbytes])

    def feed(self, data: bytes | memoryview) -> None:
        """Parse what the server sent; each complete top-level stanza is handled at once."""
        parser, depth = self._parser, self._depth
        try:
            parser.feed(data)  # bytes: expat decodes them, a character split between reads included
            for event, element in cast(_Events, parser.read_events()):
                if event == "start":
                    depth += 1
                    if depth == 1:
                        self._root = element
                    continue
                depth -= 1
                if depth == 1:
                    self._stanza(element)
                    if self._root is not None:
                        self._root.clear()      # keep the open stream element empty
                elif depth == 0:
                    self.ended = self.ended or "the server closed its stream"
                    self.abort()
        except ET.ParseError as e:
            self.ended = f"the server sent malformed XML: {e}"
            self.abort()
        self._depth = depth

    def _stanza(self, stanza: ET.Element) -> None:
        tag = stanza.tag
        if tag == _MESSAGE:
            self.on_message(stanza)
        elif tag == _IQ and stanza.get("type") in ("get", "set"):
            to = f" to={quoteattr(stanza.get('from', ''))}" if stanza.get("from") else ""
            head = f"<iq id={quoteattr(stanza.get('id', ''))}{to}"
            self.send(f"{head} type='result'/>" if stanza.find(_PING) is not None else
                      f"{head} type='error'><error type='cancel'><service-unavailable xmlns='{STANZAS}'/>"
                      "</error></iq>")
        elif tag == _STREAM_ERROR:
            self.ended = f"stream error ({_condition(stanza)})"
            self.abort()            # login(), if under way, raises with that
        elif self._login is not None:
            self._login.put_nowait(stanza)


def _condition(error: ET.Element) -> str:
    """The name of an error's condition: its first child's tag without the namespace."""
    return error[0].tag.partition("}")[2] if len(error) else "no condition given"
