"""Bearer-token authentication as ASGI middleware: the token's identity rides on the request.

Every request but the health endpoints needs a known token (401 otherwise, as on a real cluster); the
identity is put in ``scope["state"]["user"]`` (``request.state.user`` in Starlette) for the authorizer.
The token is never echoed or logged.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from llmd_lab.lab.apiserver import errors
from llmd_lab.lab.apiserver.auth.authentication import TokenAuthenticator

ANONYMOUS_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


def bearer_token(scope: Scope) -> str:
    """The token of an ``Authorization: Bearer …`` header, or empty."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, presented = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return presented.strip().decode("latin-1")
            return ""
    return ""


class BearerAuth:
    def __init__(self, app: ASGIApp, authenticator: TokenAuthenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ANONYMOUS_PATHS:
            await self.app(scope, receive, send)
            return
        user = self.authenticator.authenticate(bearer_token(scope))
        if user is not None:
            scope.setdefault("state", {})["user"] = user
            await self.app(scope, receive, send)
            return
        body = json.dumps(errors.unauthorized().to_status()).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="llmd-lab"')]})
        await send({"type": "http.response.body", "body": body})
