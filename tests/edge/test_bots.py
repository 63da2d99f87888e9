"""Bot control: scanners, bad bots and missing user agents are matched; real clients and
Bastion's own agent client are not."""

from __future__ import annotations

import pytest

from bastion.edge.bots import bot_matches
from bastion.edge.request import parse_request
from bastion.edge.rules import RuleMatch
from bastion.protocol.endpoints import USER_AGENT


def _bots(headers: dict[str, str] | list[tuple[str, str]]) -> list[RuleMatch]:
    return bot_matches(parse_request("GET", "/", headers, b""))


@pytest.mark.parametrize(
    "agent",
    [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)",
        "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
        "Mozilla/5.0 zgrab/0.x",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
        "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; SV1; .NET CLR 2.0.50727) Havij",
        "Arachni/v1.5.1",
        "gobuster/3.6",
        "Fuzz Faster U Fool v2.1.0 ffuf",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "OpenVAS-VT",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Acunetix-Product",
    ],
)
def test_scanner_user_agents(agent: str) -> None:
    assert _bots({"User-Agent": agent}) == [
        RuleMatch("bot.scanner_user_agent", "bot", "header:user-agent")
    ]


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/4.5 (compatible; HTTrack 3.0x; Windows 98)",
        "EmailCollector/1.0",
        "libwww-perl/6.72",
        "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
        "WebZIP/7.1 (http://www.spidersoft.com)",
    ],
)
def test_bad_bot_user_agents(agent: str) -> None:
    assert [m.rule_id for m in _bots({"User-Agent": agent})] == ["bot.bad_bot_user_agent"]


@pytest.mark.parametrize("headers", [{}, {"User-Agent": ""}, {"User-Agent": "   "}])
def test_missing_or_empty_user_agent(headers: dict[str, str]) -> None:
    assert _bots(headers) == [RuleMatch("bot.missing_user_agent", "bot", "header:user-agent")]


def test_bastion_agent_client_is_never_blocked() -> None:
    assert USER_AGENT.startswith("bastion-agent-client/")
    assert _bots({"User-Agent": USER_AGENT}) == []
    assert _bots([("user-agent", USER_AGENT), ("x-api-key", "k")]) == []


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "python-httpx/0.27.0",
        "curl/8.5.0",
        "Go-http-client/2.0",
        "okhttp/4.12.0",
        "PostmanRuntime/7.37.3",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "OWASP CRS test agent",
    ],
)
def test_ordinary_clients_pass(agent: str) -> None:
    assert _bots({"User-Agent": agent}) == []


def test_scanner_name_inside_a_word_does_not_match() -> None:
    assert _bots({"User-Agent": "MyApp/1.0 (dirbusterless; survega)"}) == []
