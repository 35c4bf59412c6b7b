"""A gateway that answers for one XMPP domain's accounts only (one of several on one world).

Its probe on connecting asks only its own players' presence, and only they
are taken offline when silent: the players of the other servers are their
gateways' business. The real thing, two Prosodys with a gateway each on one
world, is tests/loadtest/test_loadtest.py's run with xmpp_servers=2.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pipeline.xmpp import Endpoint, component
from pipeline.xmpp.component import XmppGateway

ACCOUNTS = {"ann@one.localhost": 5, "bob@two.localhost": 6, "cy@one.localhost": 7}


class Accounts:
    async def accounts(self) -> dict[str, int]:
        return dict(ACCOUNTS)

    async def account(self, jid: str) -> int | None:
        return ACCOUNTS.get(jid)

    async def allocate_account(self, jid: str, at_least: int) -> int:
        raise AssertionError("the probe allocates nothing")


async def probed(players_domain: str | None, monkeypatch: Any) -> tuple[list[str], list[tuple[int, bool]]]:
    gateway = XmppGateway(Endpoint("127.0.0.1", 1, "world.one.localhost", "secret"), Path("/nowhere.sock"),
                          Accounts(), players_domain=players_domain)
    probes: list[str] = []
    taken: list[tuple[int, bool]] = []
    monkeypatch.setattr(component, "PROBE_GRACE", 0.0)
    monkeypatch.setattr(gateway, "xmpp", SimpleNamespace(send_presence=lambda **kw: probes.append(kw["pto"])))
    # Everyone is online in the world, and nobody answered the probe.
    monkeypatch.setattr(gateway, "world", SimpleNamespace(view=SimpleNamespace(online=lambda entity: True)))
    monkeypatch.setattr(gateway.presence, "want", lambda entity, online, view: taken.append((entity, online)))
    await gateway._probe()
    return probes, taken


async def test_a_gateway_of_one_domain_probes_and_takes_offline_only_its_own(monkeypatch):
    probes, taken = await probed("one.localhost", monkeypatch)
    assert probes == ["ann@one.localhost", "cy@one.localhost"]
    assert taken == [(5, False), (7, False)]


async def test_a_gateway_of_every_domain_probes_every_account(monkeypatch):
    probes, taken = await probed(None, monkeypatch)
    assert probes == list(ACCOUNTS) and taken == [(5, False), (6, False), (7, False)]
