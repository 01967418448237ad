"""Bearer-token authentication as ASGI middleware (the lab has one identity: the kubeconfig's token).

The comparison is constant-time, the token is never echoed, and only the health endpoints are anonymous,
as on a real cluster.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from llmd_lab.lab.apiserver import errors

ANONYMOUS_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the API server needs a non-empty bearer token")
        self.app = app
        self._token = token.encode()

    def check(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._token)

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
        if scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), self._token):
            await self.app(scope, receive, send)
            return
        body = json.dumps(errors.unauthorized().to_status()).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="llmd-lab"')]})
        await send({"type": "http.response.body", "body": body})
