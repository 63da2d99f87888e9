"""The WAF engine's parts: client address, size limits, body replay, rule-group modes, config."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message

from bastion.config import Settings, WafSettings
from bastion.edge.allowlist import PathAllowList
from bastion.edge.body import buffer_body, declared_length, replay
from bastion.edge.clientip import ClientAddressResolver, rate_key
from bastion.edge.engine import Action, Detectors, Verdict, WafEngine
from bastion.edge.limits import SizeLimits
from bastion.edge.ratebased import IpRateRule
from bastion.edge.request import InspectedRequest, parse_request
from bastion.edge.rules import RuleMatch
from bastion.observability.metrics import WAF_MATCHES

# -- client address ---------------------------------------------------------------------------


def test_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    addr = resolver.resolve("198.51.100.9", ["203.0.113.1"])
    assert str(addr) == "198.51.100.9"


def test_no_trusted_proxies_means_forwarded_for_is_ignored() -> None:
    assert str(ClientAddressResolver([]).resolve("127.0.0.1", ["203.0.113.1"])) == "127.0.0.1"


def test_trusted_proxy_right_most_untrusted_address_wins() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8", "192.168.1.1"])
    # The client wrote "6.6.6.6" itself; the proxies appended the real hops.
    chain = ["6.6.6.6, 203.0.113.7", "10.1.2.3"]
    assert str(resolver.resolve("192.168.1.1", chain)) == "203.0.113.7"


def test_trusted_chain_only_falls_back_to_the_left_most_hop() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert str(resolver.resolve("10.0.0.1", ["10.0.0.9, 10.0.0.5"])) == "10.0.0.9"


def test_trusted_proxy_without_forwarded_for_is_the_client() -> None:
    assert str(ClientAddressResolver(["10.0.0.1"]).resolve("10.0.0.1", [])) == "10.0.0.1"


def test_garbage_where_the_client_should_be_uses_the_nearest_trusted_hop() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert str(resolver.resolve("10.0.0.1", ["unknown"])) == "10.0.0.1"
    assert str(resolver.resolve("10.0.0.1", ["203.0.113.5, garbage, 10.0.0.2"])) == "10.0.0.2"


def test_ports_brackets_and_mapped_addresses_are_normalised() -> None:
    resolver = ClientAddressResolver(["127.0.0.1"])
    assert str(resolver.resolve("127.0.0.1", ["203.0.113.7:4711"])) == "203.0.113.7"
    assert str(resolver.resolve("127.0.0.1", ["[2001:db8::1]:443"])) == "2001:db8::1"
    assert str(resolver.resolve("::ffff:127.0.0.1", ["203.0.113.8"])) == "203.0.113.8"


def test_unknown_peer_is_none() -> None:
    assert ClientAddressResolver([]).resolve(None, ["203.0.113.1"]) is None


def test_ipv6_clients_share_their_64() -> None:
    a = ipaddress.ip_address("2001:db8:1:2::1")
    b = ipaddress.ip_address("2001:db8:1:2:ffff::9")
    assert rate_key(a) == rate_key(b) == "2001:db8:1:2::/64"
    assert rate_key(ipaddress.ip_address("203.0.113.1")) == "203.0.113.1"


# -- rate rule --------------------------------------------------------------------------------


async def test_rate_rule_allows_the_quota_then_refuses_with_retry_after() -> None:
    now = [1000.0]
    rule = IpRateRule(WafSettings(rate_limit=3, rate_window_seconds=60), lambda: now[0])
    assert [(await rule.hit("a")).allowed for _ in range(4)] == [True, True, True, False]
    denied = await rule.hit("a")
    assert denied.retry_after == 20
    assert (await rule.hit("b")).allowed
    now[0] += 20
    assert (await rule.hit("a")).allowed


async def test_rate_rule_memory_is_bounded_under_an_address_flood() -> None:
    rule = IpRateRule(WafSettings(rate_limit=5, rate_max_tracked_ips=1000))
    for i in range(20_000):
        await rule.hit(f"ip-{i}")
    assert len(rule) <= 1000


# -- size limits ------------------------------------------------------------------------------


def test_route_body_limits_follow_the_server_and_upload_settings() -> None:
    settings = Settings()
    limits = SizeLimits.from_settings(settings)
    assert limits.body_limit("/message") == 1024 * 1024
    assert limits.body_limit("/message/") == 1024 * 1024
    assert limits.body_limit("/api/documents") > 25 * 1024 * 1024
    assert limits.body_limit("/api/documents/abc/file") == limits.body_limit("/api/documents")
    assert limits.body_limit("/api/documentsX") == 64 * 1024
    assert limits.body_limit("/healthz") == 64 * 1024
    settings.pipeline.max_upload_bytes = 1000
    settings.waf.limits.routes = {"/hooks/": 10}
    limits = SizeLimits.from_settings(settings)
    assert limits.body_limit("/api/documents") == 1000 + 64 * 1024
    assert limits.body_limit("/hooks/x") == 10


def test_head_violations_name_each_part_over_its_limit() -> None:
    limits = SizeLimits(uri_bytes=100, query_bytes=10, header_bytes=50, body_bytes=1)
    assert limits.head_violations(100, 10, [(b"a", b"b" * 48)]) == []
    found = limits.head_violations(101, 11, [(b"a", b"b" * 50)])
    assert [rule for rule, _ in found] == ["size.uri", "size.query", "size.headers"]


# -- body buffering ---------------------------------------------------------------------------


def _receiver(messages: list[Message]) -> tuple[list[Message], object]:
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return queue, receive


async def test_buffered_body_is_replayed_identically_in_one_message() -> None:
    _, receive = _receiver(
        [
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b"def", "more_body": False},
        ]
    )
    body = await buffer_body(receive, 10)  # type: ignore[arg-type]
    assert (body.data, body.ended, body.over) == (b"abcdef", True, False)
    again = replay(body, receive)  # type: ignore[arg-type]
    assert await again() == {"type": "http.request", "body": b"abcdef", "more_body": False}
    assert (await again())["type"] == "http.disconnect"


async def test_body_over_the_limit_stops_reading_and_replays_the_rest_unread() -> None:
    queue, receive = _receiver(
        [
            {"type": "http.request", "body": b"12345", "more_body": True},
            {"type": "http.request", "body": b"67890", "more_body": True},
            {"type": "http.request", "body": b"tail", "more_body": False},
        ]
    )
    body = await buffer_body(receive, 8)  # type: ignore[arg-type]
    assert body.over and not body.ended and len(queue) == 1
    again = replay(body, receive)  # type: ignore[arg-type]
    got = [await again() for _ in range(3)]
    assert b"".join(m["body"] for m in got) == b"1234567890tail"
    assert got[-1]["more_body"] is False


async def test_disconnect_while_buffering_is_noticed() -> None:
    _, receive = _receiver([{"type": "http.request", "body": b"ab", "more_body": True}])
    body = await buffer_body(receive, 10)  # type: ignore[arg-type]
    assert body.disconnected


def test_declared_length() -> None:
    assert declared_length([(b"content-length", b"42")]) == 42
    assert declared_length([(b"content-length", b"4x")]) == -1
    assert declared_length([]) is None


# -- allow-list -------------------------------------------------------------------------------


async def _noop(*_: object) -> None:
    return None


def test_allowlist_follows_the_live_route_table_and_extra_paths() -> None:
    routes: list[BaseRoute] = [Route("/api/items/{id}", _noop, methods=["GET"])]
    allow = PathAllowList(lambda: routes, ["/static/{rest:path}", "/message"])
    assert allow.allows_path("GET", "/api/items/7")
    assert allow.allows_path("DELETE", "/api/items/7")  # the app answers 405 itself
    assert allow.allows_path("POST", "/message")
    assert allow.allows_path("GET", "/static/css/site.css")
    assert not allow.allows_path("GET", "/api/items")
    assert not allow.allows_path("GET", "/admin")
    assert not allow.allows({"type": "websocket", "path": "/ws", "root_path": ""})
    routes.append(WebSocketRoute("/ws", _noop))
    assert allow.allows({"type": "websocket", "path": "/ws", "root_path": ""})
    assert not allow.allows_path("GET", "/ws")


# -- engine -----------------------------------------------------------------------------------


def _detectors(managed: list[RuleMatch], bot: list[RuleMatch]) -> Detectors:
    return Detectors(parse=parse_request, managed=lambda _r: managed, bot=lambda _r: bot)


def _request() -> InspectedRequest:
    return parse_request("GET", "/", [("user-agent", "curl/8.0")], b"")


SQLI = RuleMatch("managed.sqli.t", "managed", "query:id")
SCANNER = RuleMatch("bot.scanner_user_agent", "bot", "header:user-agent")


def _count(agent: str, rule_id: str, action: str) -> float:
    value = WAF_MATCHES.labels(agent, rule_id, action)._value.get()
    return float(value)


def test_block_stops_at_the_first_blocking_group_and_counts_the_metric() -> None:
    engine = WafEngine(WafSettings(), agent="t-block", detectors=_detectors([SQLI], [SCANNER]))
    verdict = Verdict()
    assert engine.content(verdict, _request())
    assert (verdict.action, verdict.status, verdict.rule_ids) == (
        Action.BLOCK,
        403,
        ["managed.sqli.t"],
    )
    assert _count("t-block", "managed.sqli.t", "BLOCK") == 1
    assert _count("t-block", "bot.scanner_user_agent", "BLOCK") == 0


def test_count_mode_records_and_lets_the_request_through() -> None:
    settings = WafSettings(groups={"managed": "COUNT"})
    engine = WafEngine(settings, agent="t-count", detectors=_detectors([SQLI], [SCANNER]))
    verdict = Verdict()
    assert engine.content(verdict, _request())  # the bot group still blocks
    assert verdict.blocked_by == "bot" and verdict.rule_ids == ["bot.scanner_user_agent"]
    assert [f.match.rule_id for f in verdict.counted()] == ["managed.sqli.t"]
    assert _count("t-count", "managed.sqli.t", "COUNT") == 1
    settings = WafSettings(groups={"managed": "COUNT", "bot": "COUNT"})
    engine = WafEngine(settings, agent="t-count2", detectors=_detectors([SQLI], [SCANNER]))
    verdict = Verdict()
    assert not engine.content(verdict, _request())
    assert verdict.action is Action.COUNT and verdict.status == 200
    assert verdict.rule_ids == ["managed.sqli.t", "bot.scanner_user_agent"]


def test_off_mode_skips_the_detectors() -> None:
    def explode(_req: InspectedRequest) -> list[RuleMatch]:
        raise AssertionError("an OFF group must not run")

    settings = WafSettings(groups={"managed": "OFF", "bot": "off"})
    engine = WafEngine(
        settings, agent="t-off", detectors=Detectors(parse_request, explode, explode)
    )
    verdict = Verdict()
    assert not engine.content(verdict, _request())
    assert verdict.action is Action.ALLOW and not engine.needs_content()


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate_window_seconds": 30}, "write one of 60, 120, 300, 600"),
        ({"rate_limit": 0}, "greater than 0"),
        ({"trusted_proxies": ["10.0.0.0/33"]}, "write an IP address or a CIDR"),
        ({"groups": {"managed": "DROP"}}, "write BLOCK, COUNT or OFF"),
        ({"groups": {"sqli": "BLOCK"}}, "Extra inputs are not permitted"),
        ({"extra_paths": ["static"]}, "starting with '/'"),
        ({"limits": {"routes": {"/x": 0}}}, "must be a positive number"),
    ],
)
def test_bad_waf_settings_say_what_to_fix(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WafSettings.model_validate(values)


def test_modes_are_case_insensitive_and_yaml_off_is_off() -> None:
    groups = WafSettings.model_validate({"groups": {"managed": "count", "bot": False}}).groups
    assert (groups.managed, groups.bot, groups.rate) == ("COUNT", "OFF", "BLOCK")


def test_a_failing_detector_blocks_in_block_mode_and_counts_in_count_mode() -> None:
    def broken(_req: InspectedRequest) -> list[RuleMatch]:
        raise RuntimeError("detector bug")

    detectors = Detectors(parse_request, broken, lambda _r: [])
    verdict = Verdict()
    assert WafEngine(WafSettings(), agent="t-fail", detectors=detectors).content(
        verdict, _request()
    )
    assert verdict.rule_ids == ["managed.inspection_failed"]
    settings = WafSettings(groups={"managed": "COUNT"})
    verdict = Verdict()
    assert not WafEngine(settings, agent="t-fail", detectors=detectors).content(verdict, _request())
    assert verdict.action is Action.COUNT
