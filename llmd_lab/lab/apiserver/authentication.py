"""Bearer-token authentication as ASGI middleware: every request but the health checks must carry a token
the :class:`~.access.Authenticator` knows; the user it names is put in ``scope["state"]["user"]`` for the
authorization check that precedes every verb.

The token is never echoed; only the health endpoints are anonymous, as on a real cluster.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.access import Authenticator

ANONYMOUS_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


class BearerAuth:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ANONYMOUS_PATHS:
            await self.app(scope, receive, send)
            return
        header = b""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                header = value
                break
        scheme, _, presented = header.partition(b" ")
        user = None
        if scheme.lower() == b"bearer":
            user = self.authenticator.authenticate(presented.strip().decode("latin-1"))
        if user is not None:
            scope.setdefault("state", {})["user"] = user
            await self.app(scope, receive, send)
            return
        body = json.dumps(errors.unauthorized().to_status()).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="llmd-lab"')]})
        await send({"type": "http.response.body", "body": body})
