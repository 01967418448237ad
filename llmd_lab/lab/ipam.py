"""Address management for the lab's cluster network: pod IPs on 127.1.0.0/16, Service cluster IPs on
127.2.0.0/16 — both inside 127.0.0.0/8, which Linux routes to loopback, so nothing the lab binds is ever
reachable from another machine (see :func:`is_loopback`).

Unlike a cluster, where each pod has a network namespace of its own and IPAM hands an address out again only
after the old sandbox is torn down, every lab on this machine (and every test run) shares one loopback: an
address is never handed out while any socket on the host still holds it (:func:`addresses_in_use`).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from pathlib import Path

TCP_TABLE = Path("/proc/net/tcp")
_TIME_WAIT = "06"  # a closed connection's leftover; it does not stop a SO_REUSEADDR listener from binding


def addresses_in_use(table: Path = TCP_TABLE) -> set[str]:
    """IPv4 addresses some TCP socket on this host is bound to (listening or connected, not TIME_WAIT), from
    Linux's ``/proc/net/tcp``; empty where that table does not exist."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return set()
    used: set[str] = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] == _TIME_WAIT:
            continue
        local = fields[1].split(":", 1)[0]
        used.add(str(ipaddress.IPv4Address(int(local, 16).to_bytes(4, "little"))))
    return used

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

    def __init__(self, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network, start: int | None = None,
                 in_use: Callable[[], set[str]] = addresses_in_use) -> None:
        self.cidr = cidr
        self._used: set[str] = set()
        self._in_use = in_use  # what the host holds outside this allocator (another lab, a socket not closed)
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
        """The next free address after the last one handed out (round robin, as host-local IPAM does), skipping
        any address a socket on this host still holds."""
        hosts = self.cidr.num_addresses
        held = self._in_use()
        for _ in range(hosts):
            self._next = (self._next + 1) % hosts
            ip = self.cidr.network_address + self._next
            last = int(ip) & 0xFF
            if last in (0, 255) or str(ip) in self._used or str(ip) in held:
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
