"""The one set of fields the lab's proxies never pass on, against RFC 9110 §7.6.1 and Go's httputil.ReverseProxy."""

from __future__ import annotations

from llmd_lab.lab.apiserver import proxy
from llmd_lab.sim import headers, routing_sidecar
from llmd_lab.sim.gateway import server


def test_hop_by_hop_is_go_reverse_proxy_hop_headers() -> None:
    # net/http/httputil/reverseproxy.go hopHeaders, lower-cased (Trailer, not RFC 2616's "Trailers": erratum 4522)
    assert headers.HOP_BY_HOP == {"connection", "proxy-connection", "keep-alive", "proxy-authenticate",
                                  "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"}
    assert headers.NOT_FORWARDED == headers.HOP_BY_HOP | {"host", "content-length"}


def test_fields_the_connection_header_names_are_dropped_too() -> None:
    given = [("Connection", "keep-alive, X-Hop"), ("connection", " x-other ,"), ("X-Hop", "1"), ("X-Other", "2"),
             ("Keep-Alive", "timeout=5"), ("Host", "a"), ("X-Kept", "3"), ("TE", "trailers")]
    assert headers.nominated(v for k, v in given if k.lower() == "connection") == {"keep-alive", "x-hop", "x-other"}
    assert headers.forwardable(given) == [("Host", "a"), ("X-Kept", "3")]
    assert headers.forwardable(given, headers.NOT_FORWARDED) == [("X-Kept", "3")]
    assert headers.forwardable([("X-Kept", "3")]) == [("X-Kept", "3")]


def test_every_proxy_uses_the_shared_set() -> None:
    """The apiserver's proxy, the gateway and the routing sidecar no longer keep sets of their own."""
    assert proxy.NOT_FORWARDED == headers.HOP_BY_HOP | {"host", "authorization"}
    assert server.NOT_FORWARDED is headers.NOT_FORWARDED
    assert routing_sidecar.NOT_FORWARDED is headers.NOT_FORWARDED
