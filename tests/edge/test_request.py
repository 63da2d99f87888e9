"""`parse_request`: what each part of a raw request becomes; nothing makes it raise."""

from __future__ import annotations

import json

import pytest

from bastion.edge.request import MAX_FIELDS, MAX_INSPECT_BYTES, parse_request

PDF = (
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\nstream\n<script>' OR 1=1 --\nendstream\n%%EOF"
)


def multipart(
    parts: list[tuple[str, str | None, str | None, bytes]], boundary: str = "XyZ"
) -> bytes:
    """A multipart body from (field name, file name, content type, content) parts."""
    chunks = []
    for name, filename, content_type, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + content + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def test_uri_path_and_query_are_decoded() -> None:
    req = parse_request("get", "/a%20b/%2e%2e/c?q=caf%C3%A9+au+lait&x=%27&flag#frag", {}, b"")
    assert req.method == "GET"
    assert req.path == "/a b/../c"
    assert req.query == (("q", "café au lait"), ("x", "'"), ("flag", ""))
    assert req.raw_query == "q=caf%C3%A9+au+lait&x=%27&flag"
    assert req.malformed == ()


def test_invalid_percent_encoding_is_kept_and_noted() -> None:
    req = parse_request("GET", "/p%zz?a=%G1%", {}, b"")
    assert req.path == "/p%zz"
    assert req.query == (("a", "%G1%"),)
    assert "uri:percent-encoding" in req.malformed


def test_invalid_utf8_in_path_is_noted_and_replaced() -> None:
    req = parse_request("GET", "/x%FF%FEy", {}, b"")
    assert "uri:utf-8" in req.malformed
    assert req.path.startswith("/x") and req.path.endswith("y")


def test_headers_from_mapping_sequence_and_bytes() -> None:
    from_map = parse_request("GET", "/", {"User-Agent": "ua", "X-Thing": "1"}, b"")
    from_seq = parse_request("GET", "/", [(b"User-Agent", b"ua"), (b"X-Thing", b"1")], b"")
    assert from_map.headers == from_seq.headers == (("user-agent", "ua"), ("x-thing", "1"))
    assert from_map.user_agent == "ua"
    assert from_map.header("X-THING") == "1"
    assert from_map.header("missing") is None


def test_user_agent_absent_or_empty() -> None:
    assert parse_request("GET", "/", {}, b"").user_agent is None
    assert parse_request("GET", "/", {"User-Agent": ""}, b"").user_agent == ""


def test_cookies_from_every_cookie_header() -> None:
    req = parse_request("GET", "/", [("Cookie", "a=1; b = two ;flag"), ("Cookie", "c=x=y")], b"")
    assert req.cookies == (("a", "1"), ("b", "two"), ("flag", ""), ("c", "x=y"))


def test_json_leaves_with_key_paths() -> None:
    body = {"a": {"b": ["x", {"c": "y"}]}, "n": 1.5, "t": True, "z": None, "e": {}}
    req = parse_request(
        "POST", "/", {"Content-Type": "application/json"}, json.dumps(body).encode()
    )
    assert dict(req.body_fields) == {
        "a.b[0]": "x",
        "a.b[1].c": "y",
        "n": "1.5",
        "t": "True",
        "z": "None",
        "e": "",
    }
    assert req.body_text == ""
    assert req.content_type == "application/json"


def test_bad_json_is_inspected_as_text() -> None:
    req = parse_request("POST", "/", {"Content-Type": "application/json"}, b'{"a": "x"')
    assert req.body_fields == ()
    assert req.body_text == '{"a": "x"'
    assert "body:json" in req.malformed


def test_deeply_nested_json_does_not_raise() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    req = parse_request("POST", "/", {"Content-Type": "application/json"}, body)
    assert "body:json" in req.malformed


def test_form_fields() -> None:
    req = parse_request(
        "POST",
        "/",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        b"name=Anna+O%27Brien&msg=hi%21",
    )
    assert req.body_fields == (("name", "Anna O'Brien"), ("msg", "hi!"))


def test_body_without_content_type_is_text_and_form() -> None:
    req = parse_request("POST", "/", {}, b"a=1&b=2")
    assert req.body_text == "a=1&b=2"
    assert req.body_fields == (("a", "1"), ("b", "2"))


def test_multipart_text_fields_file_names_and_binary_parts() -> None:
    body = multipart(
        [
            ("note", None, None, b"hello"),
            ("doc", "report.pdf", "application/pdf", PDF),
            ("fake", "fake.pdf", "application/pdf", b"not a pdf at all"),
            ("txt", "notes.txt", "text/plain", b"plain text file"),
        ]
    )
    req = parse_request("POST", "/", {"Content-Type": 'multipart/form-data; boundary="XyZ"'}, body)
    assert req.body_fields == (
        ("note", "hello"),
        ("doc:filename", "report.pdf"),
        ("fake:filename", "fake.pdf"),
        ("fake", "not a pdf at all"),
        ("txt:filename", "notes.txt"),
        ("txt", "plain text file"),
    )
    assert req.malformed == ()


def test_multipart_rfc5987_file_name() -> None:
    body = (
        b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
        b"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--B--\r\n"
    )
    req = parse_request("POST", "/", {"Content-Type": "multipart/form-data; boundary=B"}, body)
    assert req.body_fields == (("f:filename", "résumé.pdf"),)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--B\r\n\r\nx\r\n--B--"),  # no boundary parameter
        ("multipart/form-data; boundary=B", b"no delimiter here at all"),
        ("multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data"),
        ("multipart/form-data; boundary=B", b"--B\r\n\r\n\r\n--B"),  # never closed
    ],
)
def test_broken_multipart_never_raises(content_type: str, body: bytes) -> None:
    req = parse_request("POST", "/", {"Content-Type": content_type}, body)
    assert "body:multipart" in req.malformed


def test_xml_text_and_attributes_are_fields() -> None:
    body = b'<?xml version="1.0"?><root><a probe="&lt;b&gt;">text</a></root>'
    req = parse_request("POST", "/", {"Content-Type": "application/xml"}, body)
    assert req.body_fields == (("root/a@probe", "<b>"), ("root/a", "text"))


def test_xml_with_entities_is_refused_and_inspected_raw() -> None:
    body = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    req = parse_request("POST", "/", {"Content-Type": "text/xml"}, body)
    assert req.body_fields == ()
    assert "ENTITY" in req.body_text
    assert "body:xml" in req.malformed


def test_invalid_utf8_body_is_replaced_and_noted() -> None:
    req = parse_request("POST", "/", {"Content-Type": "text/plain"}, b"caf\xe9 \xff")
    assert req.body_text == "caf\ufffd \ufffd"
    assert "body:utf-8" in req.malformed


def test_oversized_body_is_bounded_and_flagged() -> None:
    body = b"a" * (MAX_INSPECT_BYTES + 10)
    req = parse_request("POST", "/", {"Content-Type": "text/plain"}, body)
    assert req.truncated
    assert len(req.body_text) == MAX_INSPECT_BYTES


def test_too_many_fields_are_bounded_and_flagged() -> None:
    query = "&".join(f"k{i}=v" for i in range(MAX_FIELDS + 5))
    req = parse_request("GET", f"/?{query}", {}, b"")
    assert req.truncated
    assert len(req.query) == MAX_FIELDS
    body = json.dumps({f"k{i}": "v" for i in range(MAX_FIELDS + 5)}).encode()
    req = parse_request("POST", "/", {"Content-Type": "application/json"}, body)
    assert req.truncated
    assert len(req.body_fields) == MAX_FIELDS


def test_large_upload_is_parsed_whole_and_fields_after_it_are_seen() -> None:
    big_pdf = b"%PDF-1.7\n" + b"\x00\x01binary" * (MAX_INSPECT_BYTES // 4)
    body = multipart(
        [("doc", "big.pdf", "application/pdf", big_pdf), ("note", None, None, b"after the file")]
    )
    req = parse_request("POST", "/", {"Content-Type": "multipart/form-data; boundary=XyZ"}, body)
    assert len(body) > MAX_INSPECT_BYTES
    assert req.body_fields == (("doc:filename", "big.pdf"), ("note", "after the file"))
    assert not req.truncated


def test_multipart_text_over_the_budget_is_bounded_and_flagged() -> None:
    body = multipart([("a", None, None, b"x" * MAX_INSPECT_BYTES), ("b", None, None, b"y" * 10)])
    req = parse_request("POST", "/", {"Content-Type": "multipart/form-data; boundary=XyZ"}, body)
    assert req.truncated
    assert dict(req.body_fields) == {"a": "x" * MAX_INSPECT_BYTES, "b": ""}
