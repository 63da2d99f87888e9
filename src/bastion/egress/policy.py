"""The egress policy and the checks that need no network: which schemes, hosts, ports and
addresses an outbound request may reach, and the `EgressDenied` error that says why not.

Rules, in the order they are checked:

1. the scheme is one of `schemes` (http and https by default; never `file`, `ftp`, ...);
2. the host is not a special address: private (RFC 1918, fc00::/7), loopback, link-local
   (169.254.0.0/16, fe80::/10), unspecified, multicast, reserved or otherwise non-global,
   CGNAT (100.64.0.0/10) or cloud metadata (169.254.169.254, fd00:ec2::254, 100.100.100.200,
   metadata.google.internal), unless `allow_private` names it. Numeric hosts are read the way
   the C resolver reads them, so `2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1` and
   `[::ffff:127.0.0.1]` are all 127.0.0.1;
3. the host is on the allow-list of the client's purpose: a `GENERAL` client may reach
   `allowed_hosts` and never `model_hosts`; a `MODEL` client (built by the LLM provider only)
   may reach `model_hosts` only.

Host patterns (`allowed_hosts`, `model_hosts`) are `api.example.com` (that host),
`*.example.com` (any subdomain, at any depth, but not `example.com` itself) or an IP address,
each optionally with a port (`api.example.com:8443`, `[::1]:8000`); without a port any port
matches. `allow_private` entries are host patterns without ports (every address the name
resolves to is then allowed, except a cloud metadata address, which only its own address or
network allows: use it for names you control), IP addresses, or networks (`10.0.0.0/8`).

`origin_policy(url, ...)` is the policy of a client bound to peers the configuration names
(an agent's peer agents, an issuer's JWKS URL): exactly those origins, no redirects.

`check_url` applies these rules to a URL; the transport (`bastion.egress.transport`) applies
rule 2 again to every address the host resolves to, and connects only to an address it checked.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Self
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AddressClass",
    "EgressDenied",
    "EgressPolicy",
    "IPAddress",
    "Purpose",
    "Rule",
    "Target",
    "check_address",
    "check_url",
    "classify_address",
    "normalise_host",
    "origin_policy",
    "parse_ip",
    "split_port",
    "target_of",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_HOSTS = frozenset({"metadata.google.internal"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# One part of a numbers-and-dots IPv4 address as inet_aton(3) reads it.
_INET_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


class Purpose(StrEnum):
    """What a client is for. Only the LLM provider builds `MODEL` clients."""

    GENERAL = "general"
    MODEL = "model"


class AddressClass(StrEnum):
    """Why an address is special; the value reads as "<address> is a(n) <value>"."""

    METADATA = "cloud metadata address"
    UNSPECIFIED = "unspecified address"
    LOOPBACK = "loopback address"
    PRIVATE = "private address"
    LINK_LOCAL = "link-local address"
    MULTICAST = "multicast address"
    CGNAT = "carrier-grade NAT address"
    RESERVED = "reserved (non-global) address"


class Rule(StrEnum):
    """The rule a denied request broke."""

    SCHEME = "scheme"
    BAD_URL = "bad_url"
    ADDRESS = "address"
    NOT_ALLOWED = "not_allowed"
    MODEL_HOST = "model_host"
    NOT_A_MODEL_HOST = "not_a_model_host"


class EgressDenied(httpx.RequestError):
    """An outbound request the egress policy refuses. It is an `httpx.RequestError` (but not a
    `TransportError`, so retry logic does not retry it): code that handles httpx failures
    handles it too. The message names the rule and what to change, and shows the URL without
    its query string, fragment or credentials."""

    def __init__(
        self,
        message: str,
        *,
        rule: Rule,
        host: str,
        url: str,
        request: httpx.Request | None = None,
    ) -> None:
        super().__init__(f"egress denied: {message} (request to {url})", request=request)
        self.rule = rule
        self.host = host
        self.url = url


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes: scheme, normalised host, effective port and path. `ip` is set
    when the host is an IP address (in any numeric form). `url` is safe to show."""

    scheme: str
    host: str
    port: int
    path: str
    ip: IPAddress | None

    @property
    def shown_host(self) -> str:
        """The host as a URL writes it (an IPv6 address in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def origin(self) -> str:
        """`host:port`, the allow-list entry of exactly this host and port."""
        return f"{self.shown_host}:{self.port}"

    @property
    def url(self) -> str:
        port = f":{self.port}" if self.port > 0 else ""
        return f"{self.scheme}://{self.shown_host}{port}{self.path}"


# --- addresses ------------------------------------------------------------------------------


def parse_ip(host: str) -> IPAddress | None:
    """`host` as an IP address when it is one in any form the C resolver accepts (dotted
    quad, a single number, octal or hex parts, fewer than four parts, IPv6), else None.
    IPv4-mapped and IPv4-compatible IPv6 addresses are returned as IPv6; `classify_address`
    looks inside them."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_PART.fullmatch(p) for p in parts):
        return None
    *leading, last = (_inet_part(p) for p in parts)
    if any(v > 0xFF for v in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    number = sum(value << (8 * (3 - index)) for index, value in enumerate(leading))
    return ipaddress.IPv4Address(number | last)


def _inet_part(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if part.startswith("0") and len(part) > 1:
        return int(part, 8)
    return int(part)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: mapped, compatible, NAT64 or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify_address(address: IPAddress) -> AddressClass | None:
    """Why `address` may not be reached by default, or None for a global unicast address.
    An IPv6 address that embeds an IPv4 address is judged by the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(str(address).split("%")[0])  # drop a zone ID
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify_address(embedded)
    if address in METADATA_ADDRESSES:
        return AddressClass.METADATA
    checks = (
        (address.is_unspecified, AddressClass.UNSPECIFIED),
        (address.is_loopback, AddressClass.LOOPBACK),
        (address.is_link_local, AddressClass.LINK_LOCAL),
        (address.is_multicast, AddressClass.MULTICAST),
        (address in CGNAT, AddressClass.CGNAT),
        (_is_rfc_private(address), AddressClass.PRIVATE),
        (address.is_reserved or not address.is_global, AddressClass.RESERVED),
    )
    return next((kind for special, kind in checks if special), None)


_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _is_rfc_private(address: IPAddress) -> bool:
    return any(address in network for network in _PRIVATE_NETWORKS)


# --- hosts and patterns ---------------------------------------------------------------------


def normalise_host(host: str) -> str:
    """A host as the policy compares it: percent-decoded, lower case, IDNA-encoded, without
    brackets or a trailing dot; numeric IPv4 forms become the dotted quad."""
    host = unquote(host).strip("[]").rstrip(".").lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host
    ip = parse_ip(host)
    return ip.compressed if ip is not None else host


def split_port(entry: str) -> tuple[str, int | None]:
    """`host[:port]` or `[v6][:port]` into the host and the port (None when absent)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"bad host pattern {entry!r}")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None  # a bare IPv6 address, or no port
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in host pattern {entry!r}")
    return host, int(port) if port is not None else None


def _host_pattern(entry: str) -> str:
    """One allow-list entry in canonical form: `host`, `*.suffix` or `[v6]`, then `:port`."""
    host, port = split_port(entry.strip())
    wildcard = host.startswith("*.")
    host = normalise_host(host.removeprefix("*."))
    if not host or "*" in host or "/" in host:
        raise ValueError(f"bad host pattern {entry!r}")
    if wildcard and parse_ip(host) is not None:
        raise ValueError(f"a wildcard needs a domain name, not an address: {entry!r}")
    shown = f"*.{host}" if wildcard else (f"[{host}]" if ":" in host else host)
    return shown if port is None else f"{shown}:{port}"


def _matches(pattern: str, host: str, port: int | None) -> bool:
    """Whether canonical `pattern` covers `host` (normalised) and `port` (None: any port)."""
    name, pattern_port = split_port(pattern)
    if pattern_port is not None and pattern_port != port:
        return False
    if name.startswith("*."):
        return host.endswith(name[1:])
    return host == name


def _private_entry(entry: str) -> str:
    """One `allow_private` entry in canonical form: a network, an address or a host pattern."""
    entry = entry.strip()
    if "/" in entry:
        return ipaddress.ip_network(entry, strict=True).compressed
    pattern = _host_pattern(entry)
    if split_port(pattern)[1] is not None:
        raise ValueError(f"allow_private entries take no port: {entry!r}")
    return pattern


# --- the policy -----------------------------------------------------------------------------


class EgressPolicy(BaseModel):
    """Where one agent's outbound HTTP may go. The default policy allows nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_hosts: tuple[str, ...] = ()
    model_hosts: tuple[str, ...] = ()
    allow_private: tuple[str, ...] = ()
    max_redirects: int = Field(default=5, ge=0, le=20)
    schemes: tuple[str, ...] = ("https", "http")

    @field_validator("allowed_hosts", "model_hosts")
    @classmethod
    def _patterns(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_host_pattern(e) for e in entries)

    @field_validator("allow_private")
    @classmethod
    def _private(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_private_entry(e) for e in entries)

    @field_validator("schemes")
    @classmethod
    def _http_only(cls, schemes: tuple[str, ...]) -> tuple[str, ...]:
        schemes = tuple(s.lower() for s in schemes)
        unknown = sorted(set(schemes) - set(DEFAULT_PORTS))
        if unknown:
            raise ValueError(f"only http and https are supported, not {', '.join(unknown)}")
        return schemes

    @model_validator(mode="after")
    def _some_scheme(self) -> Self:
        if not self.schemes:
            raise ValueError("schemes must name http, https or both")
        return self

    def allows_private(self, host: str, address: IPAddress | None) -> bool:
        """Whether `allow_private` covers the host name or the address."""
        for entry in self.allow_private:
            if "/" in entry:
                if address is not None and address in ipaddress.ip_network(entry):
                    return True
            elif _matches(entry, host, None) or (
                address is not None and _matches(entry, address.compressed, None)
            ):
                return True
        return False

    def is_model_host(self, host: str, port: int) -> bool:
        return any(_matches(p, host, port) for p in self.model_hosts)

    def is_allowed_host(self, host: str, port: int) -> bool:
        return any(_matches(p, host, port) for p in self.allowed_hosts)


def origin_policy(*urls: str) -> EgressPolicy:
    """A policy that allows exactly the origins (scheme, host, port) of `urls` and nothing else,
    private and loopback addresses included for those hosts only, and no redirects: for a client
    bound to peers the configuration names (an agent's peer, an issuer's JWKS URL). Naming a
    peer in the configuration is what allows it; a redirect elsewhere is refused."""
    schemes: list[str] = []
    hosts: list[str] = []
    private: list[str] = []
    for url in urls:
        target = target_of(url)
        if target.scheme not in DEFAULT_PORTS or not target.host or target.port <= 0:
            raise ValueError(f"{url!r} is not an http(s) URL with a host")
        schemes.append(target.scheme)
        hosts.append(target.origin)
        private.append(target.host)
    return EgressPolicy(
        allowed_hosts=tuple(dict.fromkeys(hosts)),
        allow_private=tuple(dict.fromkeys(private)),
        schemes=tuple(dict.fromkeys(schemes)),
        max_redirects=0,
    )


# --- checks ---------------------------------------------------------------------------------


def target_of(url: httpx.URL | str) -> Target:
    """Scheme, normalised host, effective port and path of `url`, parsed without httpx's IPv4
    strictness (it rejects `0177.0.0.1`, which the C resolver accepts)."""
    parts = urlsplit(str(url))
    scheme = parts.scheme.lower()
    host = normalise_host(_netloc_host(parts.netloc))
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = DEFAULT_PORTS.get(scheme, 0)
    return Target(scheme, host, port, parts.path or "/", parse_ip(host))


def _netloc_host(netloc: str) -> str:
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):
        return host_port[1:].partition("]")[0]
    return host_port.partition(":")[0]


def check_url(
    policy: EgressPolicy, url: httpx.URL | str, purpose: Purpose = Purpose.GENERAL
) -> Target:
    """Raise `EgressDenied` unless `policy` lets a `purpose` client request `url`; checks the
    scheme, a numeric host's address, metadata host names and the allow-lists. The addresses a
    host name resolves to are checked by the transport (`check_address`)."""
    target = target_of(url)
    if target.scheme not in policy.schemes:
        allowed = ", ".join(policy.schemes)
        raise _denied(target, Rule.SCHEME, f"scheme {target.scheme!r} is not allowed ({allowed})")
    if not target.host or target.port < 0:
        raise _denied(target, Rule.BAD_URL, "the URL has no host or a bad port")
    if target.host in METADATA_HOSTS and not policy.allows_private(target.host, None):
        raise _special(target, target.host, AddressClass.METADATA)
    if target.ip is not None:
        check_address(policy, target, target.ip)
    _check_purpose(policy, target, purpose)
    return target


def check_address(policy: EgressPolicy, target: Target, address: IPAddress) -> None:
    """Raise `EgressDenied` when `address` (the host's, or one it resolved to) is special and
    `allow_private` covers neither it nor the host name (a metadata address: not it)."""
    kind = classify_address(address)
    if kind is None:
        return
    # A cloud metadata address must be allowed by itself (its address or a network holding
    # it): allowing a host name does not let that name resolve to one.
    host = address.compressed if kind is AddressClass.METADATA else target.host
    if not policy.allows_private(host, address):
        raise _special(target, address.compressed, kind)


def _check_purpose(policy: EgressPolicy, target: Target, purpose: Purpose) -> None:
    where = f"{target.host}:{target.port}"
    if purpose is Purpose.MODEL:
        if not policy.is_model_host(target.host, target.port):
            raise _denied(
                target,
                Rule.NOT_A_MODEL_HOST,
                f"{where} is not a model endpoint; add it to model_hosts to allow it",
            )
        return
    if policy.is_model_host(target.host, target.port):
        raise _denied(
            target,
            Rule.MODEL_HOST,
            f"{where} is a model endpoint; only the guarded model client (bastion.llm) may call it",
        )
    if not policy.is_allowed_host(target.host, target.port):
        raise _denied(
            target,
            Rule.NOT_ALLOWED,
            f"{where} is not on the allow-list; add it to allowed_hosts to allow it",
        )


def _special(target: Target, what: str, kind: AddressClass) -> EgressDenied:
    article = "an" if kind.value[0] in "aeiou" else "a"
    resolved = "" if what == target.host else f" ({target.host} resolves to it)"
    return _denied(
        target,
        Rule.ADDRESS,
        f"{what} is {article} {kind.value}{resolved}; add it to allow_private to allow it",
    )


def _denied(target: Target, rule: Rule, message: str) -> EgressDenied:
    return EgressDenied(message, rule=rule, host=target.host, url=target.url)
