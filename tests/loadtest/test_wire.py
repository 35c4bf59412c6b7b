"""The bots' own XMPP client (loadtest/wire.py) against a REAL Prosody, and its parser alone."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from loadtest.echo import ECHO_COMPONENT, EchoComponent
from loadtest.wire import WireClient
from pipeline.xmpp.prosody import ProsodyServer, prosody_installed
from vocabulary.errors import XmppError

PASSWORD = "pw"
WAIT = 5.0


@pytest.fixture(scope="module")
def echo_prosody(tmp_path_factory):
    if not prosody_installed():
        pytest.skip("the prosody binary is missing (apt-get install prosody; .ci/run does it)")
    with ProsodyServer(tmp_path_factory.mktemp("prosody"), extra_components=(ECHO_COMPONENT,)) as server:
        server.create_accounts([("ann", PASSWORD), ("ben", PASSWORD)])
        yield server


class Recording(WireClient):
    """Keeps every top-level stanza it gets, messages or not."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[ET.Element] = asyncio.Queue()
        self.stanzas: list[ET.Element] = []
        super().__init__(self.messages.put_nowait)

    def _stanza(self, stanza: ET.Element) -> None:
        self.stanzas.append(stanza)
        super()._stanza(stanza)


async def logged_in(prosody: ProsodyServer, name: str, password: str = PASSWORD) -> Recording:
    client = Recording()
    await asyncio.wait_for(client.login("127.0.0.1", prosody.c2s_port, prosody.domain, name, password), WAIT)
    return client


async def until(condition, what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {WAIT} s: {what}")


async def test_it_logs_in_binds_a_resource_and_closes_cleanly(echo_prosody):
    client = await logged_in(echo_prosody, "ann")
    assert client.open and client.jid.startswith(f"ann@{echo_prosody.domain}/")
    await asyncio.wait_for(client.close(2.0), 3.0)
    assert not client.open and client.transport is None
    assert client.ended == "the server closed its stream"      # the server answered our </stream:stream>


async def test_a_wrong_password_is_a_clear_error(echo_prosody):
    client = Recording()
    with pytest.raises(XmppError, match=r"^authentication failed \(not-authorized\)$"):
        await asyncio.wait_for(client.login("127.0.0.1", echo_prosody.c2s_port, echo_prosody.domain, "ann",
                                            "wrong"), WAIT)
    await until(lambda: client.transport is None, "the connection closed")
    with pytest.raises(XmppError, match="cannot connect to 127.0.0.1:1: "):
        await Recording().login("127.0.0.1", 1, echo_prosody.domain, "ann", PASSWORD)


async def test_a_message_goes_round_the_echo_component_and_comes_back_as_an_element(echo_prosody):
    async with EchoComponent(echo_prosody.endpoint(ECHO_COMPONENT)):
        client = await logged_in(echo_prosody, "ann")
        client.send("<presence/>")
        client.send(f'<message to="{ECHO_COMPONENT}" type="chat"><command xmlns="urn:x" seq="7">caf\u00e9 &amp; co'
                    "</command></message>")
        echoed = await asyncio.wait_for(client.messages.get(), WAIT)
        await client.close(2.0)
    assert echoed.tag == "{jabber:client}message" and echoed.get("from") == ECHO_COMPONENT
    assert echoed.get("to", "").startswith(f"ann@{echo_prosody.domain}")
    command = echoed.find("{urn:x}command")
    assert command is not None and command.get("seq") == "7" and command.text == "caf\u00e9 & co"


async def test_an_iq_get_is_answered_a_ping_with_a_result_anything_else_with_an_error(echo_prosody):
    ann, ben = await logged_in(echo_prosody, "ann"), await logged_in(echo_prosody, "ben")
    ann.send(f"<iq type='get' id='p1' to='{ben.jid}'><ping xmlns='urn:xmpp:ping'/></iq>")
    ann.send(f"<iq type='get' id='v1' to='{ben.jid}'><query xmlns='jabber:iq:version'/></iq>")
    await until(lambda: {s.get("id") for s in ann.stanzas} >= {"p1", "v1"}, "both answers")
    answers = {s.get("id"): s for s in ann.stanzas}
    assert answers["p1"].get("type") == "result" and answers["p1"].get("from") == ben.jid
    assert answers["v1"].get("type") == "error"
    assert answers["v1"].find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None
    assert ann.messages.empty() and ben.messages.empty()       # iqs never reach on_message
    await asyncio.gather(ann.close(2.0), ben.close(2.0))


async def test_a_stream_error_closes_the_connection_and_nothing_more(echo_prosody):
    client = await logged_in(echo_prosody, "ann")
    client.send("<message><oops></message>")        # not well-formed: the server ends the stream
    await until(lambda: client.transport is None, "the connection closed")
    assert not client.open and client.ended == "stream error (not-well-formed)"
    client.send("<presence/>")                      # a write after the end goes nowhere, quietly
    await client.close(2.0)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


def test_stanzas_split_anywhere_between_reads_are_put_together():
    got: list[ET.Element] = []
    client = WireClient(got.append)
    transport = FakeTransport()
    client.connection_made(transport)
    stream = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' id='s1'>"
              "<message from='w'><u xmlns='urn:u' acked='3'><seen>\u00e9\u20ac</seen></u></message>"
              "<presence from='x'/><iq type='get' id='q&quot;1' from='srv'><ping xmlns='urn:xmpp:ping'/></iq>"
              "<message from='w2'/>").encode()
    for i in range(len(stream)):                # one byte at a time, a UTF-8 character split too
        client.get_buffer(-1)[:1] = stream[i:i + 1]
        client.buffer_updated(1)
    assert [m.get("from") for m in got] == ["w", "w2"]
    assert got[0][0].get("acked") == "3" and got[0][0][0].text == "\u00e9\u20ac"
    assert transport.written == [b"<iq id='q\"1' to=\"srv\" type='result'/>"]     # quoteattr picks the quotes
    assert client._root is not None and len(client._root) == 0     # nothing piles up under the stream
    client.feed(b"</stream:stream>")
    assert transport.closing and client.ended == "the server closed its stream"
