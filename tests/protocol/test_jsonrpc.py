"""Strict JSON-RPC 2.0 parsing: every malformed case maps to the right error."""

from __future__ import annotations

import pytest

from bastion.protocol.errors import INVALID_REQUEST, PARSE_ERROR
from bastion.protocol.jsonrpc import Call, InvalidCall, parse_body


def test_valid_request() -> None:
    parsed = parse_body(b'{"jsonrpc":"2.0","method":"echo","params":{"message":"hi"},"id":1}')
    assert parsed.fatal is None and not parsed.is_batch
    (call,) = parsed.items
    assert isinstance(call, Call)
    assert (call.method, call.params, call.id, call.is_notification) == (
        "echo",
        {"message": "hi"},
        1,
        False,
    )


def test_notification_has_no_id() -> None:
    (call,) = parse_body(b'{"jsonrpc":"2.0","method":"echo"}').items
    assert isinstance(call, Call) and call.is_notification


def test_null_id_is_a_request_not_a_notification() -> None:
    (call,) = parse_body(b'{"jsonrpc":"2.0","method":"echo","id":null}').items
    assert isinstance(call, Call) and not call.is_notification and call.id is None


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"jsonrpc":"2.0",}', b"\xff\xfe"])
def test_parse_error(body: bytes) -> None:
    parsed = parse_body(body)
    assert parsed.fatal is not None and parsed.fatal.error.code == PARSE_ERROR


@pytest.mark.parametrize(
    ("body", "expected_id"),
    [
        (b'{"jsonrpc":"1.0","method":"echo","id":7}', 7),
        (b'{"method":"echo","id":7}', 7),
        (b'{"jsonrpc":2.0,"method":"echo","id":7}', 7),
        (b'{"jsonrpc":"2.0","method":5,"id":"a"}', "a"),
        (b'{"jsonrpc":"2.0","method":"","id":"a"}', "a"),
        (b'{"jsonrpc":"2.0","id":"a"}', "a"),
        (b'{"jsonrpc":"2.0","method":"echo","params":"x","id":3}', 3),
        (b'{"jsonrpc":"2.0","method":"echo","params":5,"id":3}', 3),
        (b'{"jsonrpc":"2.0","method":"echo","id":{"a":1}}', None),
        (b'{"jsonrpc":"2.0","method":"echo","id":[1]}', None),
        (b'{"jsonrpc":"2.0","method":"echo","id":true}', None),
        (b"1", None),
        (b'"text"', None),
        (b"null", None),
    ],
)
def test_invalid_request(body: bytes, expected_id: object) -> None:
    parsed = parse_body(body)
    assert parsed.fatal is None
    (item,) = parsed.items
    assert isinstance(item, InvalidCall)
    assert item.error.code == INVALID_REQUEST
    assert item.id == expected_id


def test_empty_batch_is_one_invalid_request() -> None:
    parsed = parse_body(b"[]")
    assert parsed.fatal is not None and parsed.fatal.error.code == INVALID_REQUEST


def test_batch_over_limit_is_rejected_whole() -> None:
    one = b'{"jsonrpc":"2.0","method":"echo","id":1}'
    parsed = parse_body(b"[" + b",".join([one] * 4) + b"]", max_batch=3)
    assert parsed.fatal is not None and parsed.fatal.error.code == INVALID_REQUEST
    assert "at most 3" in str(parsed.fatal.error.data)


def test_batch_mixes_valid_and_invalid_elements() -> None:
    parsed = parse_body(b'[{"jsonrpc":"2.0","method":"echo","id":1}, 1, {"foo":"boo"}]')
    assert parsed.is_batch and parsed.fatal is None
    kinds = [type(i).__name__ for i in parsed.items]
    assert kinds == ["Call", "InvalidCall", "InvalidCall"]
