"""Research benchmark: the shared HotpotQA sample through the real research agents on loopback.

    .venv/bin/python bench/research.py [--limit N] [--json FILE]

The corpus (`hotpotqa100_corpus.json`, title -> sentences) becomes the research corpus in its
JSON list form; each question goes to the gateway over `WS /ws/research` as `submitter`, and on
through the research, researcher and critic agents (every service its own process on
127.0.0.1, as `bastion up` runs them; every hop authenticated, delegated, authorized, rate
limited and audited), offline (no model).

Measured on each half of the questions (even: the half the offline steps were tuned on; odd:
held out), in the same run:

* citations: the share of runs whose every `[n]` resolves to a listed source (target 100%);
* supporting-passage recall of the cited sources against the gold supporting facts (the share
  of gold supporting passages, by title, among the cited sources), next to single-shot BM25
  over the same corpus at the same number of passages per question, and BM25 at 5 (target:
  at least 0.10 above BM25 at the same number);
* answer: the share of questions whose gold answer appears in the answer or the report
  (target >= 70%), and answer EM and F1 with HotpotQA normalisation;
* determinism: every question asked twice, byte-identical reports;
* latency: p50 and p95 per question from the question sent to the `done` event (target p50
  <= 2 s), and from the question to the first event (target <= 200 ms);
* security cost, as the issue defines it: the same runs with the agents in one process and
  security off (the researcher and critic agents served on loopback in this process by
  `AgentApp(security=False)`, called over A2A by the research agent's own service, which records
  each run and its report; no authentication, delegation, authorization, rate limit or audit):
  the share of the total time the zero-trust deployment adds (target <= 10%). The secure side
  also pays for what the baseline leaves out: the gateway, the WebSocket (this script's client
  included) and a process per service;
* and, for scale, the same runs with no HTTP at all (`LocalResearcher`, `LocalCritic`): the
  share of crossing services and zero trust together. It runs after the security-off one in
  the same process, whose guardrail token caches it then finds warm: a lower bound.

The sides take turns question by question, so a slower minute of the machine falls on each, and
each timed run starts after a pause longer than the audit flush interval, so that no side pays
for work another left behind. The WebSocket client is asyncio, one connection per question (as
`bastion research` opens them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bastion.agents.services import service_supervisor  # noqa: E402
from bastion.config import Settings, load_settings  # noqa: E402
from bastion.observability.logging import configure_logging  # noqa: E402
from bastion.project import init_project  # noqa: E402
from bastion.research.agents.common import credibility_rules  # noqa: E402
from bastion.research.agents.critic import definition as critic_definition  # noqa: E402
from bastion.research.agents.remote import RemoteCritic, RemoteResearcher  # noqa: E402
from bastion.research.agents.research import ResearchService  # noqa: E402
from bastion.research.agents.researcher import ResearchParams, findings_events  # noqa: E402
from bastion.research.corpus import hotpotqa_documents  # noqa: E402
from bastion.research.engine import ResearchEngine  # noqa: E402
from bastion.research.ports import LocalCritic, LocalResearcher  # noqa: E402
from bastion.research.protocol import FINAL_EVENTS, StartParams  # noqa: E402
from bastion.research.providers import ProviderSet  # noqa: E402
from bastion.research.researcher import Researcher  # noqa: E402
from bastion.research.retrieval import CorpusIndex  # noqa: E402
from bastion.research.store import ResearchStore  # noqa: E402
from bastion.research.text import CITATION_RE, answer_scores, normalize_answer  # noqa: E402
from bastion.runtime import AgentApp, AgentClient, AgentDefinition, MethodRegistry  # noqa: E402
from bastion.security import resolve  # noqa: E402
from bastion.storage import LocalObjectStore, shared_engine  # noqa: E402
from bastion.testing.pipeline_stack import assign_ports  # noqa: E402
from bastion.testing.ports import free_port  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets" / "research"
BM25_AT = 5
# Before each timed run: longer than the services' audit flush interval (0.2 s by default), so
# that the audit records of a secure run are written before a baseline run, not during it.
SETTLE_SECONDS = 0.25
WARM_UP = "Who designed the Eiffel Tower?"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _prepare(workdir: Path) -> tuple[Path, Path]:
    """A project whose research corpus is the HotpotQA sample, every service on a free port."""
    corpus = json.loads((DATASETS / "hotpotqa100_corpus.json").read_text(encoding="utf-8"))
    corpus_file = workdir / "hotpotqa_corpus.json"
    corpus_file.write_text(json.dumps(hotpotqa_documents(corpus)), encoding="utf-8")
    config = init_project(workdir / "project").config
    assign_ports(
        config,
        research={"corpus": str(corpus_file), "providers": ["corpus"]},
        logging={"level": "WARNING"},
    )
    return config, corpus_file


@contextlib.contextmanager
def _served(config: Path, settings: Settings) -> Iterator[str]:
    """Every service as `bastion up` runs it, each its own process on loopback; the gateway
    URL. (The archive stays empty: the research runs search the corpus only.)"""
    with service_supervisor(config, settings, log_dir=config.parent / "logs"):
        yield settings.pipeline.gateway_url


class _Client:
    """A WebSocket client of the gateway, one connection per question as `bastion research`
    opens them (asyncio, on its own event loop: no thread per connection)."""

    def __init__(self, gateway: str, key: str) -> None:
        self.url = gateway.replace("http://", "ws://") + "/ws/research"
        self.protocols = [Subprotocol("bastion.v1"), Subprotocol(f"bearer.{key}")]
        self.loop = uvloop.new_event_loop()

    def ask(self, question: str) -> tuple[dict[str, Any], float, float]:
        """The result object of one research run over WS /ws/research, its seconds, and the
        seconds from the question sent to the first event."""
        return self.loop.run_until_complete(self._ask(question))

    async def _ask(self, question: str) -> tuple[dict[str, Any], float, float]:
        started = time.perf_counter()
        async with connect(self.url, subprotocols=self.protocols, compression=None) as ws:
            sent = time.perf_counter()
            await ws.send(json.dumps({"message": question, "mode": "research"}))
            first: float | None = None
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if first is None:
                    first = time.perf_counter() - sent
                if event["type"] == "done":
                    return event["result"], time.perf_counter() - started, first
                if event["type"] in ("error", "cancelled"):
                    raise RuntimeError(f"run ended with {event}")

    def close(self) -> None:
        self.loop.close()


class _Baselines:
    """The same runs in this process, with security off, two ways (the research agent's own
    service records each run and its report as the agent does; each run is followed to its
    `done`):

    * `agents`: the researcher and critic agents served on loopback in this process with
      security off (`AgentApp(security=False)`: no authentication, delegation, authorization,
      rate limit or audit), called over A2A as the research agent calls them;
    * `local`: the researcher and critic called in place (`LocalResearcher`, `LocalCritic`),
      no HTTP at all.

    Both use the event loop the services use (uvloop)."""

    def __init__(self, settings: Settings) -> None:
        self.loop = uvloop.new_event_loop()
        self.providers = ProviderSet(settings)
        core = Researcher(
            self.providers.for_owner,
            credibility_rules(settings),
            passages_per_question=settings.research.passages_per_question,
        )
        self.settings = settings
        self.servers: list[uvicorn.Server] = []
        self.clients: list[AgentClient] = []
        researcher_url = self._serve(_researcher_security_off(core), settings)
        critic_url = self._serve(critic_definition(settings), settings)
        self.clients = [AgentClient(researcher_url), AgentClient(critic_url)]
        over_http = ResearchEngine(
            RemoteResearcher(self.clients[0]), RemoteCritic(self.clients[1]), settings.research
        )
        in_place = ResearchEngine(
            LocalResearcher(core),
            LocalCritic(min_credibility=settings.research.min_credibility),
            settings.research,
        )
        self.agents = self._service(over_http)
        self.local = self._service(in_place)

    def _serve(self, definition: AgentDefinition, settings: Settings) -> str:
        port = free_port()
        config = uvicorn.Config(
            AgentApp(definition, settings, security=False),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            access_log=False,
            log_config=None,
        )
        server = uvicorn.Server(config)
        self.servers.append(server)
        self.loop.create_task(server.serve())
        while not server.started:
            self.loop.run_until_complete(asyncio.sleep(0.01))
        return f"http://127.0.0.1:{port}"

    def _service(self, engine: ResearchEngine) -> ResearchService:
        return ResearchService(
            engine,
            ResearchStore(shared_engine(self.settings.database_url())),
            run_timeout_seconds=self.settings.research.run_timeout_seconds,
            objects=LocalObjectStore(self.settings.path(self.settings.pipeline.objects_dir)),
        )

    def ask(self, service: ResearchService, question: str) -> float:
        """Seconds for one run, from the question to its `done` event."""
        started = time.perf_counter()
        self.loop.run_until_complete(_follow_run(service, question))
        return time.perf_counter() - started

    def close(self) -> None:
        for server in self.servers:
            server.should_exit = True
        for client in self.clients:
            self.loop.run_until_complete(client.aclose())
        self.loop.run_until_complete(self.providers.aclose())
        self.loop.run_until_complete(asyncio.sleep(0.3))
        self.loop.close()


def _researcher_security_off(core: Researcher) -> AgentDefinition:
    """The researcher agent's method without its delegation check (there is no delegation
    with security off): the same research, streamed the same way."""
    registry = MethodRegistry()

    @registry.method("research", streaming=True)
    async def research(params: ResearchParams) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.aclosing(findings_events(core, params)) as events:
            async for event in events:
                yield event

    return AgentDefinition(name="researcher", description="researcher", registry=registry)


async def _follow_run(service: ResearchService, question: str) -> None:
    started = await service.start(StartParams(message=question, mode="research"), "bench", "")
    live = service.runs.get(started["id"], "bench")
    assert live is not None
    async for event in live.follow():
        if event["type"] in FINAL_EVENTS:
            assert event["type"] == "done", event
            return


def _cited(result: dict[str, Any]) -> list[dict[str, Any]]:
    numbers = {int(n) for n in CITATION_RE.findall(result["report"])}
    return [s for s in result["sources"] if s["n"] in numbers]


def _score(item: dict[str, Any], result: dict[str, Any], rerun: dict[str, Any],
           index: CorpusIndex) -> dict[str, Any]:  # fmt: skip
    gold_titles = {title for title, _ in item["supporting_facts"]}
    numbers = {int(n) for n in CITATION_RE.findall(result["report"])}
    resolves = numbers <= {s["n"] for s in result["sources"]}
    cited_titles = {s["title"] for s in _cited(result)}
    k = max(1, len(cited_titles))
    bm25_same = {hit.document.title for hit in index.search(item["question"], k)}
    bm25_5 = {hit.document.title for hit in index.search(item["question"], BM25_AT)}
    gold = normalize_answer(item["answer"])
    em, f1 = answer_scores(result["answer"] or "", item["answer"])
    return {
        "citations_resolve": resolves,
        "recall": len(gold_titles & cited_titles) / len(gold_titles),
        "bm25_same_k": len(gold_titles & bm25_same) / len(gold_titles),
        "bm25_at_5": len(gold_titles & bm25_5) / len(gold_titles),
        "cited": len(cited_titles),
        "answer_found": gold in normalize_answer(result["answer"] + " " + result["report"]),
        "em": em,
        "f1": f1,
        "deterministic": rerun["report"] == result["report"],
    }


def _summary(
    rows: list[dict[str, Any]], latencies: list[float], firsts: list[float]
) -> dict[str, Any]:
    n = len(rows)

    def share(key: str) -> float:
        return sum(float(r[key]) for r in rows) / n

    return {
        "questions": n,
        "citations_resolve": share("citations_resolve"),
        "recall": share("recall"),
        "bm25_same_k": share("bm25_same_k"),
        "bm25_at_5": share("bm25_at_5"),
        "cited_per_question": share("cited"),
        "answer_found": share("answer_found"),
        "em": share("em"),
        "f1": share("f1"),
        "deterministic": share("deterministic"),
        "p50_s": _percentile(latencies, 0.5),
        "p95_s": _percentile(latencies, 0.95),
        "first_event_p50_ms": 1000 * _percentile(firsts, 0.5),
        "first_event_p95_ms": 1000 * _percentile(firsts, 0.95),
    }


def _table(halves: dict[str, dict[str, Any]], cost: dict[str, float]) -> str:
    rows = [
        ("questions", "{:.0f}", "questions"),
        ("every [n] resolves", "{:.0%}", "citations_resolve"),
        ("supporting recall, cited sources", "{:.2f}", "recall"),
        ("  BM25, same number of passages", "{:.2f}", "bm25_same_k"),
        ("  gain over BM25 (target >= 0.10)", "{:+.2f}", "gain"),
        (f"  BM25 at {BM25_AT} passages", "{:.2f}", "bm25_at_5"),
        ("cited sources per question", "{:.1f}", "cited_per_question"),
        ("gold answer in answer/report", "{:.0%}", "answer_found"),
        ("answer EM", "{:.2f}", "em"),
        ("answer F1", "{:.2f}", "f1"),
        ("byte-identical rerun", "{:.0%}", "deterministic"),
        ("latency p50 (s)", "{:.2f}", "p50_s"),
        ("latency p95 (s)", "{:.2f}", "p95_s"),
        ("first event p50 (ms, target <= 200)", "{:.0f}", "first_event_p50_ms"),
        ("first event p95 (ms)", "{:.0f}", "first_event_p95_ms"),
    ]
    names = list(halves)
    lines = [f"| measure | {' | '.join(names)} |", "|---|" + "---:|" * len(names)]
    for label, fmt, key in rows:
        cells = [fmt.format(halves[h][key]) for h in names]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += [
        "",
        "| security cost | seconds |",
        "|---|---:|",
        f"| through the agents (all questions, once) | {cost['secure_s']:.2f} |",
        f"| agents in one process, security off | {cost['security_off_s']:.2f} |",
        f"| **security cost** (share of the total; target <= 10%) | {cost['share']:.1%} |",
        f"| in one process, no HTTP, no security | {cost['local_s']:.2f} |",
        f"| share spent crossing services and zero trust together | {cost['share_in_place']:.1%} |",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--json", type=Path, help="also write the measures to this file")
    args = parser.parse_args()
    questions_file = DATASETS / "hotpotqa100_questions.json"
    if not questions_file.is_file():
        print(f"no dataset at {questions_file}: the shared datasets sit beside the repository")
        return 2
    items = json.loads(questions_file.read_text(encoding="utf-8"))
    if args.limit:
        items = items[: args.limit]
    with tempfile.TemporaryDirectory(prefix="bastion-research-bench-") as tmp:
        config, corpus_file = _prepare(Path(tmp))
        settings = load_settings(config)
        configure_logging(settings.logging, stream=sys.stderr)  # the baselines' services: quiet
        key = resolve(settings.pipeline.submit_api_key or "", settings.base_dir).get()
        index = CorpusIndex(corpus_file)
        rows: dict[str, list[dict[str, Any]]] = {"even (tuned)": [], "odd (held out)": []}
        latencies: dict[str, list[float]] = {"even (tuned)": [], "odd (held out)": []}
        firsts: dict[str, list[float]] = {"even (tuned)": [], "odd (held out)": []}
        baselines = _Baselines(settings)
        with _served(config, settings) as gateway:
            # The corpus index is built on every side: not measured.
            client = _Client(gateway, key)
            client.ask(WARM_UP)
            baselines.ask(baselines.agents, WARM_UP)
            baselines.ask(baselines.local, WARM_UP)
            secure = off = local = 0.0
            for i, item in enumerate(items):
                half = "even (tuned)" if i % 2 == 0 else "odd (held out)"
                # Each question through the agents, again (determinism), then with security
                # off, then in place: the sides take turns, so that a slower minute of the
                # machine falls on all of them. Each timed run starts on a quiet machine (the
                # services' work after the previous answer, an audit flush, is over).
                question = item["question"]
                time.sleep(SETTLE_SECONDS)
                result, seconds, first = client.ask(question)
                rerun, _, _ = client.ask(question)
                time.sleep(SETTLE_SECONDS)
                off_seconds = baselines.ask(baselines.agents, question)
                time.sleep(SETTLE_SECONDS)
                local_seconds = baselines.ask(baselines.local, question)
                secure += seconds
                off += off_seconds
                local += local_seconds
                latencies[half].append(seconds)
                firsts[half].append(first)
                rows[half].append(_score(item, result, rerun, index))
                print(
                    f"  {i + 1}/{len(items)} {seconds:.2f}s (security off {off_seconds:.2f}s, "
                    f"in place {local_seconds:.2f}s)",
                    file=sys.stderr,
                    flush=True,
                )
            client.close()
        baselines.close()
    halves = {h: _summary(rows[h], latencies[h], firsts[h]) for h in rows if rows[h]}
    for summary in halves.values():
        summary["gain"] = summary["recall"] - summary["bm25_same_k"]
    cost = {
        "secure_s": secure,
        "security_off_s": off,
        "local_s": local,
        "share": max(0.0, 1 - off / secure),
        "share_in_place": max(0.0, 1 - local / secure),
    }
    print(f"\nResearch benchmark ({platform.machine()}, {len(items)} questions, offline)\n")
    print(_table(halves, cost))
    if args.json:
        args.json.write_text(json.dumps({"halves": halves, "security_cost": cost}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
