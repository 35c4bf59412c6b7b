"""Accounts are made the same from a terminal as from a pipe (prosodyctl's shell once read the terminal)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.xmpp.prosody import prosody_installed

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("script") or not prosody_installed(), reason="needs script(1) and prosody")
def test_accounts_are_made_from_a_terminal(tmp_path, pg_server):
    program = textwrap.dedent(f"""
        from pathlib import Path
        from pipeline.xmpp.prosody import ProsodyServer
        server = ProsodyServer(Path({str(tmp_path / 'prosody')!r})).start()
        try:
            server.create_accounts([("t1", "pw"), ("t2", "pw")])
            print("created")
        finally:
            server.stop()
    """)
    (tmp_path / "program.py").write_text(program)
    # script(1) runs it with a pseudo-terminal as its controlling terminal, as a person's shell would.
    done = subprocess.run(["script", "-qec", f"{sys.executable} {tmp_path / 'program.py'}", "/dev/null"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert "created" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
