"""`bastion submit`: upload PDFs to the gateway, wait until they are processed, show results.

Progress comes from the gateway's live event stream (`WS /ws/events`, the API key sent in the
`Sec-WebSocket-Protocol` header, never in the URL), narrowed to the uploaded documents; each is
read once after the subscription (it may have moved on before) and once more when its final
event arrives, for the full result. When the stream cannot be opened, or ends early, the
command warns and polls instead.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection

from bastion.cli.common import (
    ConfigOption,
    JsonOption,
    client_api_key,
    err_console,
    fail,
    print_rows,
    settings_from,
)
from bastion.cli.gateway_ws import open_gateway_socket

TERMINAL = frozenset({"archived", "failed"})
# Status reads are paced to stay well inside the submitter's default rate limit (300/minute):
# one document is polled every 0.25 s, many documents in turn at this overall rate.
POLLS_PER_SECOND = 4.0
# How long the gateway may stay unreachable while we wait before we give up on it.
UNREACHABLE_GRACE_SECONDS = 10.0
RATE_LIMIT_RETRIES = 10
MAX_RETRY_AFTER_SECONDS = 10.0
RESULT_COLUMNS = (
    "file",
    "id",
    "correlation id",
    "status",
    "outcome",
    "type",
    "failure reason",
    "findings",
)
EVENTS_PATH = "/ws/events"
FINAL_EVENTS = frozenset({"document.archived", "document.failed", "document.deleted"})
MAX_SUBSCRIBE_IDS = 1000  # the gateway's limit for one `subscribe` message
STREAM_OPEN_SECONDS = 10.0
# While following the stream, pending documents are also re-read this often (a safety net).
STREAM_REFRESH_SECONDS = 30.0


class _Unreachable(Exception):
    """The gateway did not answer at all."""


@dataclass
class _Item:
    """One file and what became of it."""

    file: Path
    id: str | None = None
    status: str = "pending"
    outcome: str | None = None
    document_type: str | None = None
    failure_reason: str | None = None
    findings: int | None = None
    error: str | None = None
    error_code: str | None = None  # short form of `error` for the table
    correlation_id: str | None = None
    done: bool = False  # archived, failed or gone, as last read from the gateway

    def update(self, doc: dict[str, Any]) -> None:
        self.status = str(doc.get("status") or self.status)
        self.done = self.status in TERMINAL
        self.outcome = doc.get("outcome")
        self.document_type = doc.get("document_type")
        self.failure_reason = doc.get("failure_reason")
        findings = doc.get("findings")
        self.findings = len(findings) if isinstance(findings, list) else None
        # The document's own: its first upload's, which traces its processing.
        self.correlation_id = doc.get("correlation_id") or self.correlation_id

    def row(self, *, full_id: bool) -> dict[str, Any]:
        if full_id:
            return {
                "file": str(self.file),
                "id": self.id,
                "status": self.status,
                "outcome": self.outcome,
                "document_type": self.document_type,
                "failure_reason": self.failure_reason,
                "findings": self.findings,
                "error": self.error,
                "correlation_id": self.correlation_id,
            }
        return {
            "file": self.file.name,
            "id": self.id,
            "correlation id": self.correlation_id,
            "status": self.status,
            "outcome": self.outcome,
            "type": self.document_type,
            "failure reason": self.error_code or self.failure_reason,
            "findings": self.findings,
        }


def _error(resp: httpx.Response) -> tuple[str, str]:
    """(`HTTP 415 not_pdf`, `HTTP 415 not_pdf: <the gateway's message>`)."""
    try:
        error = resp.json().get("error") or {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    short = f"HTTP {resp.status_code}" + (f" {error['code']}" if error.get("code") else "")
    message = error.get("message") or resp.text.strip()[:200] or resp.reason_phrase
    return short, f"{short}: {message}"


def _error_text(resp: httpx.Response) -> str:
    return _error(resp)[1]


def _refused(resp: httpx.Response, what: str) -> None:
    """Stop at once when the gateway refuses the credential itself: every file would fail."""
    if resp.status_code == 401:
        fail(
            f"the gateway rejected the API key ({_error_text(resp)}): check "
            "pipeline.submit_api_key, --api-key or BASTION_API_KEY"
        )
    if resp.status_code == 403:
        fail(
            f"the API key may not {what} ({_error_text(resp)}): use the `submitter` key "
            "from `bastion init`, or grant it in policy.json"
        )


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(resp.headers.get("Retry-After", 1))))
    except ValueError:
        return 1.0


def _request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request, retried while the gateway says 429 (rate limited)."""
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            resp = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                raise _Unreachable(str(exc) or type(exc).__name__) from None
            raise
        if resp.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
            return resp
        time.sleep(_retry_after(resp))
    raise AssertionError("unreachable")


def _upload(client: httpx.Client, item: _Item, key: str) -> None:
    try:
        with item.file.open("rb") as fh:
            resp = _request(
                client,
                "POST",
                "/api/documents",
                files={"file": (item.file.name, fh, "application/pdf")},
                headers={"X-API-Key": key},
            )
    except OSError as exc:
        item.status, item.error_code = "rejected", "unreadable"
        item.error = f"cannot read the file: {exc.strerror}"
        return
    except httpx.HTTPError as exc:
        item.status, item.error_code = "rejected", "upload failed"
        item.error = f"upload failed: {exc or type(exc).__name__}"
        return
    _refused(resp, "upload documents (gateway.upload_document)")
    if resp.status_code not in (200, 202):
        item.status = "rejected"
        item.error_code, item.error = _error(resp)
        return
    body = resp.json()
    item.id = str(body["id"])
    item.status = str(body.get("status", "queued"))
    item.outcome = body.get("outcome")
    item.correlation_id = body.get("correlation_id")


def _fetch(client: httpx.Client, item: _Item, key: str) -> None:
    """Refresh `item` from GET /api/documents/{id}; transient errors leave it as it was."""
    try:
        resp = _request(client, "GET", f"/api/documents/{item.id}", headers={"X-API-Key": key})
    except httpx.HTTPError:
        return
    _refused(resp, "read documents (gateway.get_document); use --no-wait")
    if resp.status_code == 404:
        item.status, item.done = "gone", True
        item.error_code = "HTTP 404"
        item.error = "the gateway no longer has this document (deleted meanwhile?)"
        return
    if resp.status_code != 200:
        return
    body = resp.json()
    doc = body.get("document") if isinstance(body.get("document"), dict) else body
    item.update(doc)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not (enabled and err_console.is_terminal),
        transient=False,
    )
    with progress:
        yield progress


def _unreachable(url: str, reason: str) -> None:
    fail(f"cannot reach the gateway at {url} ({reason}): is `bastion up` running?")


def _wait(
    client: httpx.Client, items: list[_Item], key: str, timeout: float, progress: Progress
) -> bool:
    """Poll until every accepted document is archived or failed; False on timeout."""
    pending = [i for i in items if i.id is not None and not i.done]
    task = progress.add_task("processing", total=len(pending))
    deadline = time.monotonic() + timeout
    unreachable_since: float | None = None
    while pending:
        for item in list(pending):
            try:
                _fetch(client, item, key)
            except _Unreachable as exc:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > UNREACHABLE_GRACE_SECONDS:
                    _unreachable(str(client.base_url), str(exc))
            else:
                unreachable_since = None
                if item.done:
                    pending.remove(item)
                    progress.advance(task)
            if not pending:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(1 / POLLS_PER_SECOND)
    return True


def _subscribe(ws: ClientConnection, ids: list[str]) -> str | None:
    """Narrow the stream to `ids`; None once acknowledged, else why not. The server answers a
    credential it refuses by closing the stream, which shows here."""
    if len(ids) > MAX_SUBSCRIBE_IDS:
        return None
    try:
        ws.send(json.dumps({"subscribe": ids}))
        while _message(ws.recv(timeout=STREAM_OPEN_SECONDS)).get("type") != "subscribed":
            pass
    except ConnectionClosed as exc:
        return f"the gateway closed {EVENTS_PATH}: {_closed(exc)}"
    except TimeoutError:
        return f"{EVENTS_PATH} did not answer"
    return None


def _closed(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "connection lost"
    return f"{exc.rcvd.code} {exc.rcvd.reason}".strip()


def _message(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _settle(client: httpx.Client, item: _Item, key: str) -> None:
    """Read `item`'s full result; if the gateway is away, its last event's status stands."""
    try:
        _fetch(client, item, key)
    except _Unreachable:
        item.done = item.status in TERMINAL


def _follow(
    client: httpx.Client,
    ws: ClientConnection,
    items: list[_Item],
    key: str,
    timeout: float,
    progress: Progress,
) -> bool | None:
    """Follow the event stream until every accepted document is archived or failed: True;
    False on timeout; None when the stream ended first (the caller polls for the rest)."""
    pending = {i.id: i for i in items if i.id is not None and not i.done}
    task = progress.add_task("processing", total=len(pending))
    deadline = time.monotonic() + timeout
    refresh_at = time.monotonic()  # documents may have moved on before the subscription
    while pending:
        now = time.monotonic()
        if now >= refresh_at:
            for item in list(pending.values()):
                _settle(client, item, key)
            refresh_at = now + STREAM_REFRESH_SECONDS
        else:
            try:
                event = _message(ws.recv(timeout=max(0.0, min(deadline, refresh_at) - now)))
            except TimeoutError:
                event = {}
            except ConnectionClosed:
                return None
            moved = pending.get(str(event.get("document_id")))
            if moved is not None:
                moved.status = str(event.get("status") or moved.status)
                if event.get("type") in FINAL_EVENTS:
                    _settle(client, moved, key)
        for doc_id, item in list(pending.items()):
            if item.done:
                del pending[doc_id]
                progress.advance(task)
        if pending and time.monotonic() >= deadline:
            return False
    return True


def _wait_live(
    client: httpx.Client,
    items: list[_Item],
    key: str,
    timeout: float,
    progress: Progress,
    tls: ssl.SSLContext | bool,
) -> bool:
    """Wait for the accepted documents with the event stream, else by polling; False on
    timeout."""
    ids = [i.id for i in items if i.id is not None]
    if not ids:
        return True
    started = time.monotonic()
    try:
        with open_gateway_socket(
            str(client.base_url), EVENTS_PATH, key, tls, open_timeout=STREAM_OPEN_SECONDS
        ) as ws:
            problem = _subscribe(ws, ids)
            if problem is None:
                followed = _follow(client, ws, items, key, timeout, progress)
                if followed is not None:
                    return followed
                problem = "the live event stream ended early"
    except (OSError, TimeoutError, WebSocketException) as exc:
        problem = f"cannot open {EVENTS_PATH}: {type(exc).__name__}"
    _warn(progress, f"no live progress ({problem}); polling the gateway for status instead")
    left = max(0.0, timeout - (time.monotonic() - started))
    return _wait(client, items, key, left, progress)


def _warn(progress: Progress, message: str) -> None:
    progress.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def submit(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="PDF files to upload.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Print the document ids (correlation ids on stderr) and exit; do not wait.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0, help="Seconds to wait for all documents to finish."),
    ] = 300.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="BASTION_API_KEY",
            help="Upload with this key (prefer $BASTION_API_KEY; default: "
            "pipeline.submit_api_key).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Upload PDFs to the gateway and wait until each is archived or failed.

    Exits 1 if an upload was rejected or waiting timed out. A document that ends `failed` is
    a result (shown with its reason), not an error of this command.
    """
    from bastion.runtime import service_tls

    settings = settings_from(config)
    key = client_api_key(settings, api_key, "upload")
    gateway = settings.pipeline.gateway_url.rstrip("/")
    items = [_Item(file=f) for f in files]
    tls = service_tls(settings)
    client = httpx.Client(
        base_url=gateway,
        timeout=httpx.Timeout(120.0, connect=5.0),
        verify=tls,
        trust_env=False,
    )
    finished = True
    with client, _progress(enabled=True) as progress:
        task = progress.add_task("uploading", total=len(items))
        for item in items:
            try:
                _upload(client, item, key)
            except _Unreachable as exc:
                _unreachable(gateway, str(exc))
            if item.error:
                progress.console.print(
                    f"[bold red]rejected:[/] {escape(str(item.file))}: {escape(item.error)}",
                    highlight=False,
                    soft_wrap=True,
                )
            progress.advance(task)
        if not no_wait:
            finished = _wait_live(client, items, key, timeout, progress, tls)
    rejected = [i for i in items if i.status == "rejected"]
    if no_wait:
        ids = [i.id for i in items if i.id]
        for item in items:
            if item.id:
                err_console.print(
                    f"{item.file.name}: document {item.id}, correlation id {item.correlation_id}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        sys.stdout.write(
            orjson.dumps(ids).decode() + "\n" if as_json else "".join(f"{i}\n" for i in ids)
        )
    else:
        print_rows(
            [i.row(full_id=as_json) for i in items],
            RESULT_COLUMNS,
            as_json=as_json,
            title="submitted documents",
        )
        failed = [i for i in items if i.status == "failed"]
        if failed:
            err_console.print(
                f"{len(failed)} document(s) failed in the pipeline; their reasons are above "
                "(`bastion dlq list` shows any the worker gave up on)",
                highlight=False,
            )
    if not finished:
        waiting = sum(1 for i in items if i.id and not i.done)
        fail(
            f"timed out after {timeout:g} s with {waiting} document(s) still queued or "
            "processing: is the worker running (`bastion up`)? Check later with `bastion status`"
        )
    if rejected:
        fail(f"{len(rejected)} of {len(items)} upload(s) rejected (reasons above)")
