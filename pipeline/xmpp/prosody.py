"""A private Prosody (Debian's `prosody` package) for `fluxworld serve`.

Everything lives under state_dir()/prosody/: `prosody.cfg.lua`, `data/`
(accounts), `prosody.pid`, `prosody.log`, `secret` (the component's, 0600)
and `ports.json` (the c2s and component ports this run chose). The config
is rewritten on every start, because the ports are chosen free each time.

Choices (../shared/MEASURED.md): loopback only; no s2s, http or TLS; PLAIN
allowed unencrypted, which is safe on loopback and saves bots ~14 ms of
SCRAM per login; Nagle off and an incremental Lua GC; jemalloc as its
allocator when installed (`JEMALLOC`); what a client may send limited by a
module of ours (mod_fluxworld_limits.lua, written to `plugins/`). Prosody
refuses to run as root (silently: the reason is only in its log), so as
root it runs, and prosodyctl too, as the `prosody` user the package creates.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import resource
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

from persistence.embedded import state_dir
from vocabulary.errors import XmppError

from . import DEFAULT_COMPONENT, DEFAULT_DOMAIN, Endpoint
from .certificate import ensure_certificate

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PROSODY_USER = "prosody"

_CONFIG = """-- Written by fluxworld (pipeline/xmpp/prosody.py) on every start; edits are lost.
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = {log} }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
admin_socket = {admin_socket}
plugin_paths = {{ {plugins} }}
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "admin_shell"{limits_module} }}
-- The world's messages are live news: a player who comes back wants the world as it is, not a backlog.
modules_disabled = {{ "s2s", "offline" }}
-- STARTTLS with a self-signed certificate (pipeline/xmpp/certificate.py): chat clients will not send a
-- password without it. Loopback only, so plain TCP stays allowed too (the load test's bots use it).
ssl = {{ certificate = {certificate}; key = {key}; }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
{limits}-- Debian's stock config throttles each client to 10 kB/s; these two halve CPU and latency.
network_settings = {{ nagle = false; }}
gc = {{ mode = "incremental", threshold = 200, speed = 200 }}

VirtualHost {domain}
{components}"""
_COMPONENT = """
Component {component}
    component_secret = {secret}
"""


C2S_PORT = 5222          # XMPP client connections (RFC 6120)
# What one client may send, in bytes a second and seconds of it at once: a player's commands are
# ~200 bytes and the world takes 20 a second (burst 10), so 4 kB/s (20 a second, 40 at once) never
# holds a player back, while a flood is throttled at its socket, before Prosody parses it or the
# world has to answer it (mod_fluxworld_limits.lua, which says why not Prosody's mod_limits).
CLIENT_RATE, CLIENT_BURST = 4000, 2
LIMITS_MODULE = Path(__file__).with_name("mod_fluxworld_limits.lua")
_LIMITS = """-- What one client may send (pipeline/xmpp/prosody.py, CLIENT_RATE).
fluxworld_client_rate = {rate}
fluxworld_client_burst = {burst}
"""
# Prosody's Lua frees many small blocks at once when its collector sweeps; with glibc's malloc that
# stalled it 20-60 ms about once a second (perf: malloc_consolidate, _int_free), with jemalloc not.
JEMALLOC = next(Path("/usr/lib").glob("*/libjemalloc.so.2"), None)     # Debian's libjemalloc2
COMPONENT_PORT = 5347    # XEP-0114 components, by convention


def _lua(value: str | Path) -> str:
    """A Lua string literal (JSON's escapes are valid Lua for what we write)."""
    return json.dumps(str(value))


def free_port(preferred: int = 0) -> int:
    """A TCP port free on loopback now: `preferred` if it is, else the kernel's choice."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            # As a listening server would: connections of a previous run lingering
            # in TIME_WAIT do not make the port busy.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = s.getsockname()[1]
            return port
    raise OSError("no free port on loopback")


def _environment() -> dict[str, str]:
    if JEMALLOC is None:
        return dict(os.environ)
    preload = " ".join(filter(None, (os.environ.get("LD_PRELOAD"), str(JEMALLOC))))
    return {**os.environ, "LD_PRELOAD": preload}


def prosody_installed() -> bool:
    return shutil.which("prosody") is not None and shutil.which("prosodyctl") is not None


class ProsodyServer:
    """`with ProsodyServer() as server:` runs Prosody until the block ends."""

    def __init__(self, root: Path | None = None, *, domain: str = DEFAULT_DOMAIN,
                 component: str = DEFAULT_COMPONENT, extra_components: tuple[str, ...] = (),
                 client_rate: int | None = CLIENT_RATE) -> None:
        self.root = root or state_dir() / "prosody"
        self.domain, self.component = domain, component
        self.extra_components = extra_components    # more components (the load test's echo), same secret
        self.client_rate = client_rate              # bytes/s; None: clients send unthrottled (a load test's ceiling)
        self.config = self.root / "prosody.cfg.lua"
        self.data = self.root / "data"
        self.log = self.root / "prosody.log"
        self.plugins = self.root / "plugins"
        self.pidfile = self.root / "prosody.pid"
        self.c2s_port = self.component_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------ config

    def secret(self) -> str:
        """The component's secret: generated once, kept in `secret` (0600)."""
        path = self.root / "secret"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    def write_config(self) -> None:
        """Choose free ports and write the config; both are recorded under root."""
        # The standard ports when free, so a chat client finds the server where it
        # expects it; a restart keeps the ports it had, so connections can resume.
        self.c2s_port = free_port(self.c2s_port or C2S_PORT)
        self.component_port = free_port(self.component_port or COMPONENT_PORT)
        for d in (self.root, self.data, self.root / "certs", self.plugins):
            d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LIMITS_MODULE, self.plugins / LIMITS_MODULE.name)
        certificate, key = ensure_certificate(self.root / "certs", self.domain)
        text = _CONFIG.format(
            certificate=_lua(certificate), key=_lua(key),
            pidfile=_lua(self.pidfile), data=_lua(self.data), certs=_lua(self.root / "certs"),
            log=_lua(self.log), c2s_port=self.c2s_port, component_port=self.component_port,
            admin_socket=_lua(self.data / "prosody.sock"), domain=_lua(self.domain),
            plugins=_lua(self.plugins), limits_module=', "fluxworld_limits"' if self.client_rate else "",
            limits=_LIMITS.format(rate=self.client_rate, burst=CLIENT_BURST) if self.client_rate else "",
            components="".join(_COMPONENT.format(component=_lua(c), secret=_lua(self.secret()))
                               for c in (self.component, *self.extra_components)))
        # The config holds the secret: readable by Prosody's user only.
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        (self.root / "ports.json").write_text(json.dumps({"c2s": self.c2s_port, "component": self.component_port}))
        self._hand_to_prosody_user()

    def _hand_to_prosody_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam(PROSODY_USER)
        except KeyError:
            raise XmppError(f"no '{PROSODY_USER}' user: install Debian's prosody package "
                            "(apt-get install prosody)") from None
        for path in (self.root, self.data, self.config, *self.data.rglob("*"), self.root / "certs",
                     *(self.root / "certs").iterdir(), self.plugins, *self.plugins.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)
        # Prosody's user must be able to reach root: make its parents traversable
        # (not readable), as the embedded PostgreSQL does for its data directory.
        for parent in self.root.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)

    def _as_prosody(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", PROSODY_USER, "--", *argv] if os.geteuid() == 0 else argv

    # ------------------------------------------------------------ running

    @property
    def pid(self) -> int | None:
        """Prosody's process id, from the pidfile it writes once it runs; None before (or unreadable)."""
        try:
            return int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def endpoint(self, component: str | None = None) -> Endpoint:
        """Where the world's component (or one of extra_components) connects."""
        return Endpoint("127.0.0.1", self.component_port, component or self.component, self.secret())

    def start(self) -> ProsodyServer:
        if not prosody_installed():
            raise XmppError("prosody is not installed: apt-get install prosody (make serve does it)")
        self.write_config()
        # Every client is a socket: the soft limit (1,024 after runuser's PAM session) would cap the
        # players, and Prosody answers "Error loading roster" once its files run out. Raise it to the hard one.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        files = [] if hard == resource.RLIM_INFINITY or not shutil.which("prlimit") else \
            ["prlimit", f"--nofile={hard}"]
        self._process = subprocess.Popen(self._as_prosody([*files, "prosody", "-F", "--config", str(self.config)]),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True, env=_environment())
        deadline = time.monotonic() + START_TIMEOUT
        while not (_listening(self.c2s_port) and _listening(self.component_port)):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise XmppError(f"prosody did not start listening on 127.0.0.1:{self.c2s_port} and "
                                f":{self.component_port}{self._log_tail()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> ProsodyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ accounts

    @property
    def certificate(self) -> Path:
        """The self-signed certificate STARTTLS presents (made on the first start): what a client trusts."""
        return self.root / "certs" / f"{self.domain}.crt"

    def account_exists(self, name: str) -> bool:
        """Whether `name@domain` has an account (Prosody's data file for it, which exists whether or
        not the server runs; the path's parts encoded as Prosody's datamanager does)."""
        def encoded(part: str) -> str:
            return re.sub(r"[^A-Za-z0-9]", lambda m: "".join(f"%{b:02x}" for b in m.group().encode()), part)
        return (self.data / encoded(self.domain) / "accounts" / f"{encoded(name.lower())}.dat").exists()

    def create_account(self, name: str, password: str) -> str:
        """Create (or reset the password of) `name@domain`; returns the bare JID.
        Works whether or not the server runs: prosodyctl writes the data files."""
        if not self.config.exists():
            self.write_config()
        done = subprocess.run(self._as_prosody(["prosodyctl", "--config", str(self.config), "register",
                                                name, self.domain, password]),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                              start_new_session=True)     # no terminal to read: see create_accounts
        if done.returncode != 0:
            problem = [line for line in done.stdout.splitlines() + done.stderr.splitlines()
                       if "certmanager" not in line]
            raise XmppError(f"cannot create account {name}@{self.domain}: {' '.join(problem) or done.returncode}")
        return f"{name}@{self.domain}".lower()

    def create_accounts(self, accounts: list[tuple[str, str]]) -> None:
        """Many accounts at once through the running server's admin shell
        (MEASURED.md: 600 in 1.3 s, where one prosodyctl call each takes ~50 ms)."""
        lines = "".join(f"user:create({_lua(f'{name}@{self.domain}')}, {_lua(password)})\n"
                        for name, password in accounts)
        # A session of its own: with a controlling terminal, prosodyctl's shell reads the terminal
        # instead of our pipe and waits forever (`make test` from a terminal hung here).
        done = subprocess.run(self._as_prosody(["prosodyctl", "--config", str(self.config), "shell"]),
                              input=lines, capture_output=True, text=True, timeout=60, start_new_session=True)
        created = done.stdout.count("OK: User created")
        if done.returncode != 0 or created != len(accounts):
            raise XmppError(f"created {created} of {len(accounts)} accounts: {done.stdout[-500:]}")

    def _log_tail(self, lines: int = 8) -> str:
        try:
            tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\nprosody log ({}):\n  {}".format(self.log, "\n  ".join(tail)) if tail else ""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
