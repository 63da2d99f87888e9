"""The client IP address the edge rules key on.

The address is the socket peer's, unless the peer is one of the configured trusted proxies
(`waf.trusted_proxies`, addresses or CIDRs): then `X-Forwarded-For` is read from the right
(each proxy appends the address it received the request from) and the first address that is
not itself a trusted proxy is the client. Entries to the left of it were written by the
client and are never believed. A malformed entry where the client's address should be means
a broken proxy chain: the nearest trusted hop is used instead.

IPv6 clients are keyed by their /64 network, which one host usually controls whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


def parse_address(value: str) -> IPAddress | None:
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:8080"
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def rate_key(addr: IPAddress) -> str:
    """The key an address is counted under: itself (IPv4) or its /64 (IPv6)."""
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class ClientAddressResolver:
    """Finds the client's address from the peer and, behind trusted proxies, the XFF chain."""

    __slots__ = ("_trusted",)

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in trusted_proxies
        )

    def trusted(self, addr: IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str]) -> IPAddress | None:
        """The client's address; None when the peer is unknown (no socket address)."""
        hop = parse_address(peer) if peer else None
        if hop is None or not self._trusted or not self.trusted(hop):
            return hop
        entries = [e for value in forwarded_for for e in value.split(",") if e.strip()]
        for entry in reversed(entries):
            addr = parse_address(entry)
            if addr is None:
                return hop
            if not self.trusted(addr):
                return addr
            hop = addr
        return hop
