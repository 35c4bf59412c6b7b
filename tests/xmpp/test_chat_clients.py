"""A client we did not write: go-sendxmpp (Debian) logs in over STARTTLS, checking the private
server's certificate as chat clients do, and plays through the world's text commands."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

import pytest

from tests.xmpp.harness import PASSWORD, world_server

GO_SENDXMPP = shutil.which("go-sendxmpp")
pytestmark = pytest.mark.skipif(GO_SENDXMPP is None, reason="go-sendxmpp is missing (make test installs it)")


async def _go_sendxmpp(prosody: Any, *args: str, trust: bool = True,
                       stdin: bytes | None = None) -> asyncio.subprocess.Process:
    # Go reads extra trusted certificates from SSL_CERT_FILE: the user's "trust this certificate".
    env = {**os.environ, "SSL_CERT_FILE": str(prosody.certificate)} if trust else \
        {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    assert GO_SENDXMPP is not None
    return await asyncio.create_subprocess_exec(
        GO_SENDXMPP, "-u", f"alice@{prosody.domain}", "-p", PASSWORD, "-j", f"127.0.0.1:{prosody.c2s_port}",
        *args, env=env, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _send(prosody: Any, line: str, trust: bool = True) -> tuple[int, str]:
    # go-sendxmpp takes no JID without a local part; the world answers whatever name at its domain.
    sender = await _go_sendxmpp(prosody, f"world@{prosody.component}", trust=trust, stdin=line.encode())
    _, err = await asyncio.wait_for(sender.communicate(line.encode()), 30)
    return sender.returncode or 0, err.decode(errors="replace")


async def test_go_sendxmpp_logs_in_over_starttls_and_plays(prosody, fresh_dsn):
    async with world_server(prosody, fresh_dsn):
        listener = await _go_sendxmpp(prosody, "-l")
        assert listener.stdout is not None
        try:
            heard: list[str] = []

            async def hear(wanted: str) -> None:
                while not any(wanted in line for line in heard):
                    heard.append((await asyncio.wait_for(listener.stdout.readline(), 15)).decode())

            await asyncio.sleep(1.0)                        # the listener has logged in
            for line in ("join", "move 1 0", "look"):
                code, err = await _send(prosody, line)
                assert code == 0, err
            await hear("you:")
            assert any("alice#1" in line and "11,10" in line for line in heard), heard
        finally:
            listener.kill()
            await listener.wait()


async def test_the_certificate_is_checked_and_plain_login_is_refused_by_the_client(prosody):
    code, err = await _send(prosody, "look", trust=False)   # not told to trust the self-signed certificate
    assert code != 0 and "certificate" in err, err
