"""A console site whose alarm engine evaluates `alarm_rules.yaml` every quarter second and posts
to a local webhook receiver, and the drill that trips its `ConsoleDrillAuthFailures` rule for
real: requests with a refused API key, answered 401 by the gateway.

The page's stable hooks: `#alarms-root` (`data-refresh-ms`), `#alarms-live` (the part swapped on
every refresh), `#alarms-announce` (the polite live region), `#alarm-states` with one
`tr#alarm-row-<Name>[data-state]` per rule and its `td#alarm-state-<Name>` (the state as text:
firing, pending, resolved, inactive or nodata), `#alarm-targets` (`tr[data-target][data-up]`),
`#alarm-history` and `#alarm-notifications` (`tr[data-alarm][data-event]`, deliveries also
`[data-outcome]`), `#alarms-disabled` when the engine is off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bastion.config import AlarmsSettings, Settings
from bastion.egress import EgressPolicy
from bastion.security.stack import build_api_key_store
from bastion.testing import serve_in_thread
from bastion.testing.ports import free_port
from bastion.web import build_gateway
from tests.web.conftest import make_project, serve_archivist
from tests.web.console.conftest import ConsoleSite

RULES_FILE = Path(__file__).with_name("alarm_rules.yaml")
DRILL = "ConsoleDrillAuthFailures"  # fires while the gateway refuses API keys
QUIET = "ConsoleDrillMemory"  # never fires
BAD_KEY = "bk_drill-not-a-key"
FRAGMENT = "/console/alarms?fragment=1"
PATIENCE_SECONDS = 60.0  # a hang guard only: the drill takes a few seconds
POLL_SECONDS = 0.1  # between two looks at the page (the WAF counts every request)


def drill_alarms(hook_url: str | None, *, enabled: bool = True) -> AlarmsSettings:
    """The alarm settings of the drill: its rules, a quarter-second interval, `hook_url` (a
    loopback receiver, allowed by the egress policy) as the webhook."""
    return AlarmsSettings(
        enabled=enabled,
        rules_file=str(RULES_FILE),
        interval_seconds=0.25,
        webhooks=[hook_url] if hook_url else [],
        webhook_backoff_seconds=0,
        egress=EgressPolicy(allowed_hosts=("127.0.0.1",), allow_private=("127.0.0.1",)),
    )


@contextmanager
def console_site(
    tmp_path: Path, db_url: str, configure: Callable[[Settings], None] | None = None
) -> Iterator[ConsoleSite]:
    """The gateway (console on) and archivist on a fresh project, `configure`d first; the
    gateway listens on the port `pipeline.gateway_url` names, so it scrapes itself."""
    port = free_port()

    def setup(settings: Settings) -> None:
        settings.pipeline.gateway_url = f"http://127.0.0.1:{port}"
        if configure is not None:
            configure(settings)

    project = make_project(tmp_path, db_url, setup)
    project.keys["monitoring"] = build_api_key_store(project.settings).create("monitoring")
    with (
        serve_archivist(project),
        serve_in_thread(build_gateway(project.settings), port=port) as gateway,
    ):
        yield ConsoleSite(project, gateway.url)


def refuse_a_key(site: ConsoleSite) -> None:
    """One request with a refused API key: one more `bastion_auth_failures_total{agent=gateway}`."""
    answer = httpx.get(f"{site.url}/api/documents", headers={"X-API-Key": BAD_KEY}, timeout=10)
    assert answer.status_code == 401, answer.text


def wait_for_page(
    client: httpx.Client,
    done: Callable[[str], bool],
    *,
    meanwhile: Callable[[], None] | None = None,
    what: str,
) -> str:
    """Poll the Alarms fragment until `done(html)` (running `meanwhile` before each look);
    the fragment. Fails after `PATIENCE_SECONDS`, naming `what` it waited for."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        if meanwhile is not None:
            meanwhile()
        page = client.get(FRAGMENT)
        assert page.status_code == 200, page.text
        if done(page.text):
            return page.text
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {PATIENCE_SECONDS}s for {what}; the page:\n{page.text}")
        time.sleep(POLL_SECONDS)
