"""Address management for the lab's cluster network: pod IPs on 127.1.0.0/16, Service cluster IPs on
127.2.0.0/16 — both inside 127.0.0.0/8, which Linux routes to loopback, so nothing the lab binds is ever
reachable from another machine (see :func:`loopback_host`)."""

from __future__ import annotations

import ipaddress
import random

POD_CIDR = ipaddress.ip_network("127.1.0.0/16")
SERVICE_CIDR = ipaddress.ip_network("127.2.0.0/16")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an IPv4/IPv6 loopback address (``0.0.0.0`` and ``::`` are not: they mean "every
    interface")."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class IPAllocator:
    """Hands out addresses of one CIDR (skipping .0/.255 of each /24 so they look like host addresses)."""

    def __init__(self, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network, start: int | None = None) -> None:
        self.cidr = cidr
        self._used: set[str] = set()
        # a random starting point keeps two labs (or test runs) on one machine from handing out the same IPs
        self._next = random.randrange(cidr.num_addresses) if start is None else start

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.cidr
        except ValueError:
            return False

    def reserve(self, ip: str) -> bool:
        """Mark an address already in use (e.g. from state kept across ``down``/``up``)."""
        if ip and self.contains(ip):
            self._used.add(ip)
            return True
        return False

    def allocate(self) -> str:
        hosts = self.cidr.num_addresses
        for _ in range(hosts):
            self._next = (self._next + 1) % hosts
            ip = self.cidr.network_address + self._next
            last = int(ip) & 0xFF
            if last in (0, 255) or str(ip) in self._used:
                continue
            self._used.add(str(ip))
            return str(ip)
        raise RuntimeError(f"no free addresses left in {self.cidr}")

    def release(self, ip: str) -> None:
        self._used.discard(ip)


class Network:
    """Address allocation shared by the kubelet (pod IPs) and kube-proxy (cluster IPs)."""

    def __init__(self) -> None:
        self.pods = IPAllocator(POD_CIDR)
        self.services = IPAllocator(SERVICE_CIDR)
