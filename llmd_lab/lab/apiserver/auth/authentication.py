"""Bearer tokens → :class:`~.user.UserInfo`, as kube-apiserver's token authenticators answer.

Tokens are kept only as SHA-256 digests in memory, so a lookup never compares secrets byte by byte and no
token can leak from a repr or a log line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from llmd_lab.lab.apiserver.auth.user import UserInfo


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenAuthenticator:
    """A static token file's semantics: each known token names one identity."""

    def __init__(self, entries: Iterable[tuple[str, UserInfo]] = ()) -> None:
        self._users: dict[bytes, UserInfo] = {}
        for token, user in entries:
            self.add(token, user)

    def add(self, token: str, user: UserInfo) -> None:
        if not token:
            raise ValueError(f"identity {user.name!r} needs a non-empty bearer token")
        self._users[_digest(token)] = user

    def authenticate(self, token: str) -> UserInfo | None:
        """The identity a presented token belongs to, or None (the request is then 401)."""
        if not token:
            return None
        return self._users.get(_digest(token))

    def __repr__(self) -> str:
        return f"TokenAuthenticator({len(self._users)} identities)"
