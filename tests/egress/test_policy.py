"""The egress policy without a network: address classes, numeric host forms, allow-lists,
model hosts, schemes and what a denial says."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from bastion.egress import (
    AddressClass,
    EgressDenied,
    EgressPolicy,
    Purpose,
    Rule,
    check_url,
    classify_address,
    parse_ip,
)

OPEN = EgressPolicy(allowed_hosts=("*.example.com", "example.com", "93.184.215.14"))


def denied(policy: EgressPolicy, url: str, purpose: Purpose = Purpose.GENERAL) -> EgressDenied:
    with pytest.raises(EgressDenied) as caught:
        check_url(policy, url, purpose)
    return caught.value


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", AddressClass.METADATA),
        ("169.254.170.2", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
        ("100.100.100.200", AddressClass.METADATA),
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.255.0.9", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("10.1.2.3", AddressClass.PRIVATE),
        ("172.31.0.1", AddressClass.PRIVATE),
        ("192.168.0.1", AddressClass.PRIVATE),
        ("fd12::1", AddressClass.PRIVATE),
        ("169.254.1.1", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("fe80::1%eth0", AddressClass.LINK_LOCAL),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("100.64.0.1", AddressClass.CGNAT),
        ("100.127.255.254", AddressClass.CGNAT),
        ("240.0.0.1", AddressClass.RESERVED),
        ("192.0.2.1", AddressClass.RESERVED),
        ("2001:db8::1", AddressClass.RESERVED),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("::ffff:169.254.169.254", AddressClass.METADATA),
        ("64:ff9b::a9fe:a9fe", AddressClass.METADATA),
        ("2002:0a00:0001::1", AddressClass.PRIVATE),
    ],
)
def test_special_addresses(address: str, kind: AddressClass) -> None:
    assert classify_address(ipaddress.ip_address(address)) is kind


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "100.63.0.1"])
def test_global_addresses_are_not_special(address: str) -> None:
    assert classify_address(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F.0.0.0X1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ],
)
def test_numeric_host_forms_are_read_like_the_c_resolver(host: str, address: str) -> None:
    assert parse_ip(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "256.1", "1.2.3.4.5", "08.1", "1..2", "", "-1"])
def test_names_and_malformed_numbers_are_not_addresses(host: str) -> None:
    assert parse_ip(host) is None


# --- the checks -----------------------------------------------------------------------------


def test_cloud_metadata_is_denied_with_a_useful_message() -> None:
    error = denied(OPEN, "http://169.254.169.254/latest/meta-data/")
    assert error.rule is Rule.ADDRESS
    assert str(error) == (
        "egress denied: 169.254.169.254 is a cloud metadata address; add it to allow_private "
        "to allow it (request to http://169.254.169.254:80/latest/meta-data/)"
    )


def test_metadata_host_name_is_denied_before_any_lookup() -> None:
    policy = EgressPolicy(allowed_hosts=("metadata.google.internal",))
    assert denied(policy, "http://metadata.google.internal/computeMetadata/v1/").rule is (
        Rule.ADDRESS
    )
    allowed = policy.model_copy(update={"allow_private": ("metadata.google.internal",)})
    check_url(allowed, "http://metadata.google.internal/computeMetadata/v1/")


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://localhost.:80@127.0.0.1/",
        "http://[::1]/",
        "http://10.0.0.1:8080/",
        "http://[fe80::1%25eth0]/",
        "http://0/",
    ],
)
def test_disguised_private_addresses_are_denied(url: str) -> None:
    error = denied(OPEN, url)
    assert error.rule is Rule.ADDRESS
    assert "add it to allow_private" in str(error)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/", "gopher://example.com:70/_x", "ws://x/"]
)
def test_only_http_and_https(url: str) -> None:
    assert denied(OPEN, url).rule is Rule.SCHEME


def test_https_only_policy_refuses_http() -> None:
    policy = EgressPolicy(allowed_hosts=("example.com",), schemes=("https",))
    check_url(policy, "https://example.com/")
    assert denied(policy, "http://example.com/").rule is Rule.SCHEME


def test_allow_list_exact_and_wildcard() -> None:
    policy = EgressPolicy(allowed_hosts=("api.example.com", "*.cdn.example.org"))
    check_url(policy, "https://api.example.com/x")
    check_url(policy, "https://API.Example.COM./x")
    check_url(policy, "https://a.b.cdn.example.org/")
    for url in (
        "https://example.com/",
        "https://cdn.example.org/",
        "https://evilcdn.example.org/",
        "https://api.example.com.evil.net/",
        "https://evil.net/?api.example.com",
    ):
        error = denied(policy, url)
        assert error.rule is Rule.NOT_ALLOWED
        assert "add it to allowed_hosts" in str(error)


def test_allow_list_ports() -> None:
    policy = EgressPolicy(allowed_hosts=("api.example.com:8443", "[2606:4700::1111]:443"))
    check_url(policy, "https://api.example.com:8443/")
    check_url(policy, "https://[2606:4700::1111]/")
    assert denied(policy, "https://api.example.com/").rule is Rule.NOT_ALLOWED
    assert denied(policy, "http://[2606:4700::1111]/").rule is Rule.NOT_ALLOWED


def test_allow_private_is_explicit_per_host_or_address() -> None:
    policy = EgressPolicy(
        allowed_hosts=("127.0.0.1", "10.1.2.3", "10.9.9.9"),
        allow_private=("127.0.0.1", "10.1.0.0/16"),
    )
    check_url(policy, "http://127.0.0.1:8000/")
    check_url(policy, "http://127.1:8000/")  # the same address, in short form
    check_url(policy, "http://10.1.2.3/")
    assert denied(policy, "http://10.9.9.9/").rule is Rule.ADDRESS
    # Allowing an address does not put it on the allow-list.
    assert denied(EgressPolicy(allow_private=("127.0.0.1",)), "http://127.0.0.1/").rule is (
        Rule.NOT_ALLOWED
    )


def test_model_hosts_need_the_model_purpose() -> None:
    policy = EgressPolicy(allowed_hosts=("*.example.com",), model_hosts=("llm.example.com",))
    error = denied(policy, "https://llm.example.com/v1/models")
    assert error.rule is Rule.MODEL_HOST
    assert "only the guarded model client" in str(error)
    check_url(policy, "https://llm.example.com/v1/models", Purpose.MODEL)
    # A model client reaches model hosts only.
    assert denied(policy, "https://www.example.com/", Purpose.MODEL).rule is (Rule.NOT_A_MODEL_HOST)


def test_messages_never_show_query_fragment_or_credentials() -> None:
    url = "http://user:pa55word@169.254.169.254/latest/meta-data/?token=s3cr3t#frag"
    error = denied(OPEN, url)
    for secret in ("pa55word", "s3cr3t", "token", "frag", "user"):
        assert secret not in str(error)
    assert error.url == "http://169.254.169.254:80/latest/meta-data/"


# --- the policy model -----------------------------------------------------------------------


def test_policy_entries_are_normalised() -> None:
    policy = EgressPolicy(
        allowed_hosts=("API.Example.com.", "*.Example.org:8443", "127.1", "[::1]:9", "::1"),
        allow_private=("LocalHost", "10.0.0.0/8", "0x7f.1"),
    )
    assert policy.allowed_hosts == (
        "api.example.com",
        "*.example.org:8443",
        "127.0.0.1",
        "[::1]:9",
        "[::1]",
    )
    assert policy.allow_private == ("localhost", "10.0.0.0/8", "127.0.0.1")


@pytest.mark.parametrize(
    "fields",
    [
        {"allowed_hosts": ["*.10.0.0.1"]},
        {"allowed_hosts": ["a.*.example.com"]},
        {"allowed_hosts": ["example.com:99999"]},
        {"allowed_hosts": ["example.com:http"]},
        {"allow_private": ["localhost:8000"]},
        {"allow_private": ["10.0.0.1/8"]},
        {"schemes": ["ftp"]},
        {"schemes": []},
        {"max_redirects": -1},
        {"allowed": ["x"]},
    ],
)
def test_policy_rejects_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EgressPolicy.model_validate(fields)


def test_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        OPEN.allowed_hosts = ("*",)  # type: ignore[misc]
