"""The console's admin token: made once into the state directory, readable by its owner only.

The page is opened as /console?token=TOKEN (the server logs that address);
the server answers with a cookie holding the token and sends the browser to
/console without it, so the token leaves the address bar and the history.
Scripts may send `Authorization: Bearer TOKEN` instead. Everything under
/console answers 401 without one of the two; /metrics and /health stay
open, as scrapers and orchestrators expect.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from vocabulary.errors import InputError

TOKEN_FILE = "console-token"
COOKIE = "fluxworld_console"


def admin_token(directory: Path) -> str:
    """The token in `directory`/console-token, made (mode 0600) if it is not there."""
    path = directory / TOKEN_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                raise InputError(f"{path}: the console token is readable by others; chmod 600 it "
                                 "(or delete it to have a new one made)") from None
            token = path.read_text().strip()
            if len(token) < 16:
                raise InputError(f"{path}: not a console token (too short); delete it to have a new one made")
            return token
        token = secrets.token_urlsafe(24)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token
    except OSError as e:
        raise InputError(f"{path}: cannot read or make the console token: {e.strerror or e}") from e


def authorised(request: web.Request, token: str) -> bool:
    given = request.cookies.get(COOKIE) or ""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = header.removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


def guard(token: str) -> Middleware:
    """Middleware: /console and everything under it needs the token; `?token=` trades it for a cookie."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/console" and not request.path.startswith("/console/"):
            return await handler(request)
        offered = request.query.get("token")
        if offered is not None and hmac.compare_digest(offered.encode(), token.encode()):
            response = web.HTTPSeeOther(request.rel_url.with_query(None))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/console")
            return response
        if not authorised(request, token):
            return web.Response(status=401, text="401: the console needs its admin token: open "
                                "/console?token=TOKEN, TOKEN being the contents of console-token in the "
                                "server's state directory\n", headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check
