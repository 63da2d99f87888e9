"""`bastion research QUESTION`: ask the research system of a running `bastion up` and follow
the run live.

The question goes to the gateway's `WS /ws/research` (the API key in the
`Sec-WebSocket-Protocol` header, never in the URL). While the run goes on, its plan, the
sources the researchers found (with their credibility), and the critic's rounds are shown on
stderr; the report (Markdown, with `[n]` citations) and its numbered sources then go to stdout.
With `--json`, stdout holds only the result object (the `done` event's `result`).

Exit status: 0 the run is done; 1 the run failed, was cancelled, or the research agent refused
the request (an unknown conversation); 2 bad arguments; 3 the gateway or the research service
cannot be reached (or asks to retry later); 4 the API key was refused (401) or may not ask for
research (403).
"""

from __future__ import annotations

import contextlib
import json
import sys
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection

from bastion.cli.common import (
    ConfigOption,
    client_api_key,
    err_console,
    fail,
    settings_from,
    usage_error,
)
from bastion.cli.gateway_ws import open_gateway_socket
from bastion.research.model import is_conversation_id
from bastion.research.protocol import MAX_MESSAGE_CHARS

RESEARCH_PATH = "/ws/research"
OPEN_SECONDS = 10.0
# Without a message (events or pings) for this long beyond the ping interval, the gateway is
# taken for gone.
SILENCE_GRACE_SECONDS = 30.0

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 3
EXIT_REFUSED = 4


class ModeChoice(StrEnum):
    auto = "auto"
    chat = "chat"
    research = "research"


def _closed(exc: ConnectionClosed, gateway: str) -> NoReturn:
    """Exit with the reason the gateway closed the stream before the run ended."""
    if exc.rcvd is None:
        fail(f"the connection to the gateway at {gateway} was lost", EXIT_UNAVAILABLE)
    code, reason = exc.rcvd.code, exc.rcvd.reason
    if code == 4001:
        fail(
            f"the gateway rejected the API key ({reason}): check pipeline.submit_api_key, "
            "--api-key or BASTION_API_KEY",
            EXIT_REFUSED,
        )
    if code == 4003:
        fail(
            f"the API key may not ask for research ({reason}): use the `submitter` key from "
            "`bastion init`, or grant gateway.research in policy.json",
            EXIT_REFUSED,
        )
    if code in (4029, 1013, 1001):
        fail(f"the gateway asks to retry later: {reason or code}", EXIT_UNAVAILABLE)
    fail(f"the gateway closed the stream: {code} {reason}".strip(), EXIT_FAILED)


class _View:
    """What the run shows as its events arrive: progress on stderr, the report on stdout."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet

    def note(self, text: str, style: str = "") -> None:
        if not self.quiet:  # the console of the spinner, so that the two do not garble
            line = f"[{style}]{escape(text)}[/]" if style else escape(text)
            err_console.print(line, highlight=False, soft_wrap=True)

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "conversation":
            self.note(
                f"run {event.get('id')} in conversation {event.get('conversation_id')} "
                "(follow up with --conversation)",
                "dim",
            )
        elif kind == "progress":
            self.note(f"… {event.get('message') or event.get('stage')}", "dim")
        elif kind == "plan":
            self.note(f"plan, round {event.get('round')}:", "bold")
            for n, question in enumerate(event.get("sub_questions") or [], start=1):
                self.note(f"  {n}. {question}")
        elif kind == "source":
            cred = event.get("credibility")
            score = f"{cred:.2f}" if isinstance(cred, int | float) else "?"
            where = f" <{event['url']}>" if event.get("url") else ""
            self.note(f"  source [credibility {score}] {event.get('title')}{where}", "cyan")
        elif kind == "critique":
            reasons = "; ".join(str(r) for r in event.get("reasons") or [])
            verdict = f"critique, round {event.get('round')}: {event.get('verdict')}"
            self.note(f"{verdict}" + (f" ({reasons})" if reasons else ""), "magenta")

    def report(self, result: dict[str, Any]) -> None:
        out = Console(highlight=False, soft_wrap=False)
        out.print(Markdown(str(result.get("report") or result.get("answer") or "")))
        sources = result.get("sources") or []
        if sources:
            out.print()
            out.print("[bold]Source credibility[/]")
            for source in sources:
                where = f" {source['url']}" if source.get("url") else ""
                out.print(
                    f"[{source.get('n')}] {escape(str(source.get('title')))}{escape(where)} "
                    f"(credibility {float(source.get('credibility', 0)):.2f})",
                    soft_wrap=True,
                )


def _follow(ws: ClientConnection, view: _View, idle: float, gateway: str) -> dict[str, Any]:
    """The run's events until its final one: the result object, else exit."""
    while True:
        try:
            raw = ws.recv(timeout=idle)
        except TimeoutError:
            fail(f"the gateway at {gateway} went silent for {idle:g} s", EXIT_UNAVAILABLE)
        except ConnectionClosed as exc:
            _closed(exc, gateway)
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "done" and isinstance(event.get("result"), dict):
            return dict(event["result"])
        if kind == "cancelled":
            fail(f"the research run {event.get('id')} was cancelled", EXIT_FAILED)
        if kind == "error":
            _finish_error(ws, str(event.get("message") or "the run failed"))
        view.event(event)


def _finish_error(ws: ClientConnection, message: str) -> NoReturn:
    """An `error` event (the run failed, or the request was refused): the close that follows
    says whether to retry."""
    try:
        ws.recv(timeout=OPEN_SECONDS)
    except ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code == 1013:
            fail(f"{message} (retry shortly)", EXIT_UNAVAILABLE)
    except TimeoutError:
        pass
    fail(f"the research run failed: {message}", EXIT_FAILED)


def research(
    question: Annotated[str, typer.Argument(help="The question to research.", show_default=False)],
    mode: Annotated[
        ModeChoice,
        typer.Option(
            "--mode",
            help="auto: the research agent chooses; chat: a short answer; research: a report.",
        ),
    ] = ModeChoice.auto,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            help="Continue this conversation (its id, conv_...), so the question may refer back.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the result object as JSON.")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="BASTION_API_KEY",
            help="Ask with this key (prefer $BASTION_API_KEY; default: pipeline.submit_api_key).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Ask the research system a question and show its cited report.

    Needs a running `bastion up`. Progress goes to stderr, the report to stdout.
    """
    from bastion.runtime import service_tls

    if not question.strip():
        usage_error("the question is empty")
    if len(question) > MAX_MESSAGE_CHARS:
        usage_error(f"the question is over {MAX_MESSAGE_CHARS} characters")
    if conversation is not None and not is_conversation_id(conversation):
        usage_error(f"not a conversation id: {conversation!r} (they look like conv_...)")
    settings = settings_from(config)
    key = client_api_key(settings, api_key, "ask")
    gateway = settings.pipeline.gateway_url.rstrip("/")
    request: dict[str, Any] = {"message": question, "mode": mode.value}
    if conversation is not None:
        request["conversation_id"] = conversation
    view = _View(quiet=as_json)
    idle = settings.events.ping_interval_seconds + SILENCE_GRACE_SECONDS
    try:
        with open_gateway_socket(
            gateway, RESEARCH_PATH, key, service_tls(settings), open_timeout=OPEN_SECONDS
        ) as ws:
            try:
                ws.send(json.dumps(request))
            except ConnectionClosed as exc:  # refused before the question went out
                _closed(exc, gateway)
            live = not as_json and err_console.is_terminal
            with err_console.status("researching…") if live else contextlib.nullcontext():
                result = _follow(ws, view, idle, gateway)
    except InvalidStatus as exc:
        status = exc.response.status_code
        fail(
            f"the gateway at {gateway} does not serve {RESEARCH_PATH} (HTTP {status}): is it "
            "up to date?",
            EXIT_UNAVAILABLE,
        )
    except (OSError, TimeoutError, WebSocketException) as exc:
        fail(
            f"cannot reach the gateway at {gateway} ({type(exc).__name__}): is `bastion up` "
            "running?",
            EXIT_UNAVAILABLE,
        )
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    view.report(result)
