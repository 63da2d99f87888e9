"""Server-side request forgery to cloud metadata services.

A value that names an instance-metadata endpoint is blocked wherever it appears: the
link-local ``169.254.169.254`` (AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle) and the rest
of ``169.254.0.0/16``'s metadata addresses (``169.254.170.2`` for ECS task credentials), Alibaba's
``100.100.100.200``, AWS's IPv6 ``fd00:ec2::254``, and the metadata host names
(``metadata.google.internal``, ``metadata.azure.internal`` ...). IPv4 addresses written as one
decimal, hexadecimal or octal number, in dotted octal/hex parts or inside an IPv4-mapped IPv6
address are normalised before the comparison.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["detect"]

# Every spelling of a metadata address holds one of these: its dotted decimal form, a part
# with a leading zero (octal or hex), a long single number, or a metadata host name.
_LITERALS = ("169.254.", "100.100.100.200", "metadata", "instance-data", "fd00:ec2")
_ENCODED = re.compile(r"\d{8}|(?<![\w.])0[0-7x]")
_HOSTS = re.compile(
    r"\b(?:metadata\.google\.internal|metadata\.azure\.(?:internal|com)|metadata\.packet\.net"
    r"|instance-data(?:\.ec2\.internal)?|metadata\.tencentyun\.com|metadata\.platformequinix"
    r"\.com)\b|fd00:ec2::254"
)
# Candidate IPv4 spellings: dotted parts in decimal/octal/hex, or one large number after a scheme,
# an '@' or at the start of the value.
_DOTTED = re.compile(r"(?<![\w.])((?:0x[0-9a-f]+|\d+)(?:\.(?:0x[0-9a-f]+|\d+)){1,3})(?![\w.])")
_SINGLE = re.compile(r"(?:^|://|@|\[::ffff:)(0x[0-9a-f]{6,8}|\d{8,10})(?![\w.])")
_METADATA_NETS = tuple(
    ipaddress.ip_network(net)
    for net in ("169.254.169.254/32", "169.254.170.2/32", "169.254.169.0/24", "100.100.100.200/32")
)
_METADATA_RANGES = tuple(
    (int(net.network_address), int(net.broadcast_address)) for net in _METADATA_NETS
)


def _part(text: str) -> int:
    if text.startswith("0x"):
        return int(text, 16)
    if len(text) > 1 and text.startswith("0"):
        return int(text, 8) if text.isdigit() and "8" not in text and "9" not in text else -1
    return int(text)


def _to_ipv4(parts: list[int]) -> int | None:
    """inet_aton rules: a.b.c.d, a.b.c (c is 16 bits), a.b (b is 24 bits), a (32 bits)."""
    if any(part < 0 for part in parts):
        return None
    *head, last = parts
    last_bits = 32 - 8 * len(head)
    if any(part > 255 for part in head) or last >= 1 << last_bits:
        return None
    value = 0
    for part in head:
        value = value << 8 | part
    return value << last_bits | last


def _is_metadata(value: int | None) -> bool:
    if value is None:
        return False
    return any(low <= value <= high for low, high in _METADATA_RANGES)


def detect(forms: tuple[str, ...]) -> str | None:
    """The name of the SSRF rule that fires on any of `forms`, or None."""
    for form in forms:
        if not any(literal in form for literal in _LITERALS) and (
            "0" not in form or not _ENCODED.search(form)
        ):
            continue
        if _HOSTS.search(form):
            return "cloud_metadata"
        for match in _DOTTED.finditer(form):
            parts = [_part(p) for p in match.group(1).split(".")]
            if len(parts) >= 2 and _is_metadata(_to_ipv4(parts)):
                return "cloud_metadata"
        for match in _SINGLE.finditer(form):
            if _is_metadata(_to_ipv4([_part(match.group(1))])):
                return "cloud_metadata"
    return None
