"""The header fields a proxy never passes on as they came: one definition for every proxy the lab runs.

RFC 9110 §7.6.1 (Connection): a proxy removes the ``Connection`` field, every field it names, and the
connection-specific fields it should remove even when not named (Proxy-Connection, Keep-Alive, TE,
Transfer-Encoding, Upgrade). Go's ``net/http/httputil.ReverseProxy`` (``hopHeaders``, ``removeConnectionHeaders``)
removes exactly this set in both directions, plus Proxy-Authenticate, Proxy-Authorization and Trailer (RFC
2616's list, with ``Trailer``, not ``Trailers``: erratum 4522). kube-apiserver's pods/services proxy and llm-d's
routing sidecar are such Go proxies (both call ``httputil.NewSingleHostReverseProxy``); the lab's gateway drops
the same fields. A proxy that sends a message of its own (new body framing, new target) also sets ``Host`` and
``Content-Length`` itself: :data:`REFRAMED`.
"""

from __future__ import annotations

from collections.abc import Iterable

#: RFC 9110 §7.6.1 plus what Go's ``httputil.ReverseProxy`` strips (its ``hopHeaders``), lower-case.
HOP_BY_HOP = frozenset({
    "connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade",
})
#: Fields a proxy that re-frames the message computes for the message it sends on.
REFRAMED = frozenset({"host", "content-length"})
#: What a re-framing proxy (the gateway, the routing sidecar) never forwards as it came.
NOT_FORWARDED = HOP_BY_HOP | REFRAMED


def nominated(connection_values: Iterable[str]) -> frozenset[str]:
    """The field names the ``Connection`` header values list (``Connection: keep-alive, x-foo``): RFC 9110
    §7.6.1 makes a proxy remove them too, as Go's ``removeConnectionHeaders`` does."""
    return frozenset(name.strip().lower() for value in connection_values for name in value.split(",") if name.strip())


def forwardable(headers: Iterable[tuple[str, str]], drop: frozenset[str] = HOP_BY_HOP) -> list[tuple[str, str]]:
    """``headers`` without the ``drop`` set and without the fields their ``Connection`` header names."""
    items = list(headers)
    dropped = drop | nominated(v for k, v in items if k.lower() == "connection")
    return [(k, v) for k, v in items if k.lower() not in dropped]
