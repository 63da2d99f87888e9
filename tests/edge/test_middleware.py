"""Every WAF rejection path, and what passes, through a real uvicorn server.

The detectors are stand-ins (see conftest); `test_gateway_waf.py` runs the real ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bastion.config import Settings
from bastion.observability.metrics import WAF_MATCHES
from tests.edge.conftest import Edge, raw_exchange, waf_server

MIB = 1024 * 1024
MESSAGE_LIMIT = MIB
UPLOAD_LIMIT = 25 * MIB + 64 * 1024
SQLI = "1' OR 1=1--"


def count(agent: str, rule_id: str, action: str) -> float:
    return float(WAF_MATCHES.labels(agent, rule_id, action)._value.get())


def get(edge: Edge, path: str, **kw: object) -> httpx.Response:
    return httpx.get(edge.url + path, timeout=10, **kw)  # type: ignore[arg-type]


# -- rule 0: path allow-list ------------------------------------------------------------------


def test_unknown_path_is_404_in_the_gateway_error_shape(edge: Edge) -> None:
    before = count("edge-test", "path_allowlist.unknown_path", "BLOCK")
    r = get(edge, "/admin/.env")
    assert r.status_code == 404
    body = r.json()
    assert body["error"]["code"] == "not_found"
    assert body["correlation_id"] == r.headers["x-correlation-id"]
    assert edge.seen.bodies == []
    assert count("edge-test", "path_allowlist.unknown_path", "BLOCK") == before + 1


def test_app_routes_pass_with_the_wafs_correlation_id(edge: Edge) -> None:
    cid = "client-chosen-id-0001"
    assert get(edge, "/healthz", headers={"X-Correlation-ID": cid}).status_code == 200
    assert get(edge, "/api/documents/abc").status_code == 200
    assert edge.seen.correlation_ids[0] == cid
    assert edge.seen.correlation_ids[1]  # made by the WAF when the client sent none


def test_wrong_method_on_a_known_path_is_left_to_the_app(edge: Edge) -> None:
    assert httpx.delete(edge.url + "/healthz", timeout=10).status_code == 405


def test_extra_paths_are_allowed() -> None:
    def configure(s: Settings) -> None:
        s.waf.extra_paths = ["/static/{rest:path}"]

    with waf_server(configure) as edge:
        # Allowed by the WAF; the app itself has no such route.
        assert get(edge, "/static/site.css").status_code == 404
        assert "error" not in get(edge, "/static/site.css").text


# -- rule 1: rate per client IP ---------------------------------------------------------------


def test_flood_from_one_ip_is_429_while_another_ip_passes() -> None:
    def configure(s: Settings) -> None:
        s.waf.rate_limit = 5
        s.waf.rate_window_seconds = 60
        s.waf.trusted_proxies = ["127.0.0.1/32"]

    with waf_server(configure) as edge:
        flood = {"X-Forwarded-For": "198.51.100.77, 203.0.113.7"}
        codes = [get(edge, "/healthz", headers=flood).status_code for _ in range(5)]
        assert codes == [200] * 5
        refused = get(edge, "/healthz", headers=flood)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        other = get(edge, "/healthz", headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 200
        # The spoofable left part of the chain is not the key: a new one does not help.
        again = {"X-Forwarded-For": "192.0.2.99, 203.0.113.7"}
        assert get(edge, "/healthz", headers=again).status_code == 429


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    def configure(s: Settings) -> None:
        s.waf.rate_limit = 3
        s.waf.trusted_proxies = ["10.0.0.0/8"]

    with waf_server(configure) as edge:
        codes = [
            get(edge, "/healthz", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(4)
        ]
        assert codes == [200, 200, 200, 429]


def test_rate_count_mode_lets_the_flood_through_and_counts_it() -> None:
    def configure(s: Settings) -> None:
        s.waf.rate_limit = 2
        s.waf.groups.rate = "COUNT"

    with waf_server(configure, agent="rate-count") as edge:
        codes = [get(edge, "/healthz").status_code for _ in range(4)]
        assert codes == [200] * 4
        assert count("rate-count", "rate.per_ip", "COUNT") == 2


# -- rule 2: size limits ----------------------------------------------------------------------


def _post_head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: curl/8.5\r\n"
        f"Content-Type: application/octet-stream\r\n{extra}\r\n"
    ).encode()


def test_declared_body_over_the_message_limit_is_413_unread(edge: Edge) -> None:
    head = _post_head("/message", f"Content-Length: {MESSAGE_LIMIT + 1}\r\n")
    status, body = raw_exchange(edge.port, head)  # no body sent at all
    assert status == 413
    doc = json.loads(body)
    assert doc["error"]["code"] == "too_large"
    assert str(MESSAGE_LIMIT) in doc["error"]["message"]
    assert edge.seen.bodies == []


def test_streamed_body_over_the_message_limit_is_413(edge: Edge) -> None:
    chunk = b"x" * (64 * 1024)

    def chunks() -> Iterator[bytes]:
        for _ in range(MESSAGE_LIMIT // len(chunk) + 2):
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
        yield b"0\r\n\r\n"

    head = _post_head("/message", "Transfer-Encoding: chunked\r\n")
    status, _ = raw_exchange(edge.port, head, chunks())
    assert status == 413
    assert edge.seen.bodies == []


def test_the_same_body_passes_on_the_upload_route_unchanged(edge: Edge) -> None:
    data = os.urandom(MESSAGE_LIMIT + 1)
    assert httpx.post(edge.url + "/message", content=data, timeout=10).status_code == 413
    r = httpx.post(edge.url + "/api/documents", content=data, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}


def test_upload_route_takes_25_mib_and_refuses_more(edge: Edge) -> None:
    data = os.urandom(UPLOAD_LIMIT)
    r = httpx.post(edge.url + "/api/documents", content=data, timeout=30)
    assert r.status_code == 200
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    head = _post_head("/api/documents", f"Content-Length: {UPLOAD_LIMIT + 1}\r\n")
    status, _ = raw_exchange(edge.port, head)
    assert status == 413


def test_streamed_body_arrives_identical_in_pieces(edge: Edge) -> None:
    parts = [os.urandom(10_000) for _ in range(7)]
    r = httpx.post(edge.url + "/message", content=iter(parts), timeout=10)
    assert r.status_code == 200
    assert edge.seen.bodies == [b"".join(parts)]


@pytest.mark.parametrize(
    ("path", "headers", "what"),
    [
        ("/api/documents/" + "a" * 9000, {}, "the request URI"),
        ("/api/documents?q=" + "a" * 5000, {}, "the query string"),
        ("/healthz", {"X-Padding": "p" * 17_000}, "the request headers"),
    ],
)
def test_oversized_uri_query_and_headers_are_413(
    edge: Edge, path: str, headers: dict[str, str], what: str
) -> None:
    r = get(edge, path, headers=headers)
    assert r.status_code == 413
    assert r.json()["error"]["message"].startswith(what)
    assert edge.seen.bodies == []


def test_size_count_mode_streams_the_oversized_body_through() -> None:
    def configure(s: Settings) -> None:
        s.waf.groups.size = "COUNT"
        s.waf.limits.body_bytes = 10

    with waf_server(configure, agent="size-count") as edge:
        data = b"0123456789abcdef" * 100
        r = httpx.post(edge.url + "/message", content=data, timeout=10)  # within 1 MiB
        assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
        assert count("size-count", "size.body", "COUNT") == 0
        declared = httpx.post(edge.url + "/healthz", content=data, timeout=10)
        streamed = httpx.post(edge.url + "/healthz", content=iter([data, data]), timeout=10)
        # Past the WAF (the app itself answers: /healthz takes no POST).
        assert declared.status_code == streamed.status_code == 405
        assert count("size-count", "size.body", "COUNT") == 2


# -- rule 2: managed rules, rule 3: bots ------------------------------------------------------


def test_sqli_in_the_query_is_403_with_rule_ids_audit_and_log(edge: Edge) -> None:
    cid = "attack-trace-0001"
    with capture_logs() as logs:
        r = get(edge, "/api/documents", params={"id": SQLI}, headers={"X-Correlation-ID": cid})
    assert r.status_code == 403
    body = r.json()
    assert body["error"]["code"] == "forbidden"
    assert body["rule_ids"] == ["managed.sqli.test"]
    assert body["correlation_id"] == cid == r.headers["x-correlation-id"]
    assert edge.seen.bodies == []
    [entry] = edge.audit.entries
    assert (entry.outcome, entry.status, entry.method) == ("denied:waf", 403, "waf.managed")
    assert (entry.correlation_id, entry.client, entry.agent) == (cid, "127.0.0.1", "edge-test")
    assert entry.detail == "rules: managed.sqli.test@query:id"
    [line] = [e for e in logs if e["event"] == "waf.blocked"]
    assert line["rule_ids"] == ["managed.sqli.test"]
    assert (line["client_ip"], line["correlation_id"]) == ("127.0.0.1", cid)
    # The security-event line every refusal writes: stage, reason, correlation ID, no principal.
    [rejected] = [e for e in logs if e["event"] == "request rejected"]
    assert (rejected["stage"], rejected["status"], rejected["method"]) == (
        "waf",
        403,
        "waf.managed",
    )
    assert rejected["reason"] == "rules: managed.sqli.test@query:id"
    assert (rejected["correlation_id"], rejected["principal"]) == (cid, None)
    assert "1=1" not in json.dumps(logs, default=str)


def test_sqli_in_a_json_body_is_403(edge: Edge) -> None:
    r = httpx.post(edge.url + "/message", json={"params": {"q": SQLI}}, timeout=10)
    assert r.status_code == 403
    assert r.json()["rule_ids"] == ["managed.sqli.test"]


def test_scanner_user_agent_is_403(edge: Edge) -> None:
    r = get(edge, "/healthz", headers={"User-Agent": "sqlmap/1.7.2#stable"})
    assert r.status_code == 403
    assert r.json()["rule_ids"] == ["bot.scanner_user_agent"]
    assert edge.audit.entries[0].method == "waf.bot"


def test_missing_user_agent_is_403(edge: Edge) -> None:
    with httpx.Client(timeout=10) as client:
        del client.headers["user-agent"]
        r = client.get(edge.url + "/healthz")
    assert r.status_code == 403
    assert r.json()["rule_ids"] == ["bot.missing_user_agent"]


def test_common_api_clients_pass(edge: Edge) -> None:
    for ua in ("curl/8.5.0", "python-requests/2.32.3", "bastion-agent-client/1.0"):
        assert get(edge, "/healthz", headers={"User-Agent": ua}).status_code == 200
    assert get(edge, "/healthz").status_code == 200  # httpx's own


def test_count_mode_lets_the_attack_through_counts_and_logs_it() -> None:
    def configure(s: Settings) -> None:
        s.waf.groups.managed = "COUNT"
        s.waf.groups.bot = "COUNT"

    with waf_server(configure, agent="count-mode") as edge:
        with capture_logs() as logs:
            r = get(edge, "/api/documents", params={"id": SQLI}, headers={"User-Agent": "sqlmap"})
        assert r.status_code == 200
        assert count("count-mode", "managed.sqli.test", "COUNT") == 1
        assert count("count-mode", "bot.scanner_user_agent", "COUNT") == 1
        assert count("count-mode", "managed.sqli.test", "BLOCK") == 0
        [line] = [e for e in logs if e["event"] == "waf.counted"]
        assert line["rule_ids"] == ["managed.sqli.test", "bot.scanner_user_agent"]
        assert edge.audit.entries == []


def test_pdf_upload_with_attack_like_bytes_inside_passes_unchanged(edge: Edge) -> None:
    pdf = b"%PDF-1.7\n1 0 obj << /Title (' OR 1=1--) >>\nstream\n<script>x</script>\n%%EOF\n"
    files = {"file": ("invoice.pdf", pdf, "application/pdf")}
    with httpx.Client(timeout=10) as client:
        request = client.build_request("POST", edge.url + "/api/documents", files=files)
        sent = request.read()
        r = client.send(request)
    assert r.status_code == 200
    assert edge.seen.bodies == [sent]


def test_waf_disabled_passes_everything() -> None:
    def configure(s: Settings) -> None:
        s.waf.enabled = False

    with waf_server(configure) as edge:
        assert get(edge, "/nowhere").status_code == 404
        assert "correlation_id" not in get(edge, "/nowhere").text
        assert get(edge, "/healthz", headers={"User-Agent": "sqlmap"}).status_code == 200


# -- WebSocket handshakes ---------------------------------------------------------------------


def _ws(edge: Edge, path: str, ua: str = "bastion-test/1.0") -> str:
    url = edge.url.replace("http://", "ws://") + path
    with connect(url, user_agent_header=ua, open_timeout=10) as ws:
        return str(ws.recv(timeout=10))


def test_websocket_on_an_app_route_passes(edge: Edge) -> None:
    assert _ws(edge, "/ws/events") == "hello"


@pytest.mark.parametrize(
    ("path", "ua", "status", "code"),
    [
        ("/ws/elsewhere", "bastion-test/1.0", 404, "not_found"),
        ("/ws/events", "sqlmap/1.7", 403, "forbidden"),
        ("/ws/events?topic=" + "1%27%20OR%201%3D1--", "bastion-test/1.0", 403, "forbidden"),
    ],
)
def test_websocket_handshakes_get_the_same_rules(
    edge: Edge, path: str, ua: str, status: int, code: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _ws(edge, path, ua)
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body or b"{}")["error"]["code"] == code


def test_websocket_flood_is_429() -> None:
    def configure(s: Settings) -> None:
        s.waf.rate_limit = 1

    with waf_server(configure) as edge:
        assert _ws(edge, "/ws/events") == "hello"
        with pytest.raises(InvalidStatus) as refused:
            _ws(edge, "/ws/events")
        assert refused.value.response.status_code == 429
