"""A research run through every real hop: the gateway, the research agent, the researchers and
the critic, and the archivist behind the `archive` provider, each served on loopback with its
security stack, after the pipeline has archived two submitters' invoices.

Research acts for the asker by delegation: each asker's report cites its own invoice and never
the other's, the archivist's audit record names the asker and the acting chain, and the whole
run is one correlation ID that `bastion audit tail --correlation` shows hop by hop.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from bastion.config import load_settings
from bastion.pipeline.samples import bundled_dir
from bastion.project import init_project
from bastion.research.samples import POISONED_TITLE, bundled_corpus
from bastion.security.stack import build_api_key_store
from bastion.testing.pipeline_stack import assign_ports, pipeline_in_threads
from tests.cli.test_cli import run
from tests.e2e.test_pipeline_agents import Flow

ASKERS = {"alice": "invoice_de.pdf", "bob": "invoice_fr.pdf"}
IN_PROCESS_AUDIT = {"writer": "in_process", "flush_interval_seconds": 0.05}


class ResearchFlow(Flow):
    keys: dict[str, str]
    documents: dict[str, str]

    def ask(self, principal: str, message: str) -> list[dict[str, Any]]:
        """Every event of one run over WS /ws/research, asked as `principal`."""
        url = self.settings.pipeline.gateway_url.replace("http://", "ws://") + "/ws/research"
        protocols = [Subprotocol("bastion.v1"), Subprotocol(f"bearer.{self.keys[principal]}")]
        events = []
        with connect(url, subprotocols=protocols) as ws:
            ws.send(json.dumps({"message": message, "mode": "research"}))
            while True:
                event = json.loads(ws.recv(timeout=60))
                events.append(event)
                if event["type"] in ("done", "error", "cancelled"):
                    return events


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResearchFlow]:
    directory: Path = tmp_path_factory.mktemp("research-flow")
    result = init_project(directory / "proj")
    assign_ports(
        result.config,
        audit=IN_PROCESS_AUDIT,
        research={"corpus": str(bundled_corpus()), "providers": ["corpus", "archive"]},
    )
    policy_file = result.directory / "policy.json"
    policy = json.loads(policy_file.read_text())
    store = build_api_key_store(load_settings(result.config))
    keys = {}
    for asker in ASKERS:
        keys[asker] = store.create(asker, label="test")
        policy["allow"][asker] = policy["allow"]["submitter"]
    policy_file.write_text(json.dumps(policy))
    with pipeline_in_threads(result.config, research=True) as settings:
        research_flow = ResearchFlow(settings, result.admin_key)
        research_flow.keys = keys
        research_flow.documents = {}
        for asker, sample in ASKERS.items():
            data = (bundled_dir() / sample).read_bytes()
            doc_id, _ = research_flow.submit(data, sample, principal=asker)
            research_flow.wait(doc_id, {"archived"})
            research_flow.documents[asker] = doc_id
        yield research_flow


def _result(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[0]["type"] == "conversation", events[0]
    assert events[-1]["type"] == "done", events[-1]
    result: dict[str, Any] = events[-1]["result"]
    return result


def test_each_asker_s_report_cites_only_what_the_asker_may_open(flow: ResearchFlow) -> None:
    for asker, other in (("alice", "bob"), ("bob", "alice")):
        issuer = "Nordlicht Software" if asker == "alice" else "Atelier Lumiere"
        result = _result(flow.ask(asker, f"What did {issuer} invoice?"))
        ids = {source["id"] for source in result["sources"]}
        assert flow.documents[asker] in ids, result["sources"]
        assert flow.documents[other] not in ids
        # Asking about the other's invoice finds nothing of it.
        other_issuer = "Atelier Lumiere" if asker == "alice" else "Nordlicht Software"
        foreign = _result(flow.ask(asker, f"What did {other_issuer} invoice?"))
        assert flow.documents[other] not in {s["id"] for s in foreign["sources"]}


def test_a_run_is_one_correlation_id_across_every_hop(flow: ResearchFlow) -> None:
    result = _result(flow.ask("alice", "When was the designer of the Eiffel Tower born?"))
    cid = result["correlation_id"]
    assert re.search(r"1832", result["answer"] + result["report"])
    assert [q["title"] for q in result["quarantined"]] == [POISONED_TITLE]
    expected = {
        ("research", "gateway", "ask"),
        ("researcher", "research", "research"),
        ("critic", "research", "critique"),
        ("archivist", "researcher", "search"),
    }
    deadline = time.monotonic() + 10
    while True:  # each agent's audit writer flushes on its own schedule
        rows = flow.audit(correlation_id=cid)
        hops = {(r.agent, r.principal, r.method) for r in rows}
        if expected <= hops or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert expected <= hops, hops
    archivist = [r for r in rows if r.agent == "archivist"]
    assert all(r.detail and r.detail.startswith("for alice via researcher < research < gateway")
               for r in archivist)  # fmt: skip
    tail = run("audit", "tail", "--correlation", cid, "-n", "200", "--config", str(flow.config))
    assert tail.exit_code == 0, tail.output
    for agent in ("gateway", "research", "researcher", "critic", "archivist"):
        assert agent in tail.output
