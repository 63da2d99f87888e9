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
* security cost: the same runs in this process with no HTTP and no security stack (the research
  agent's own service, recording each run and its report, over the engine with the researcher
  and critic called in place: `LocalResearcher`, `LocalCritic`): the share of the total time
  spent crossing services (target <= 10%). It counts every HTTP hop (uvicorn and httpx, all the
  services sharing this process's interpreter), the run store, and this script's own WebSocket
  client, as well as the zero-trust stages themselves.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bastion.agents.services import service_supervisor  # noqa: E402
from bastion.config import Settings, load_settings  # noqa: E402
from bastion.project import init_project  # noqa: E402
from bastion.research.agents.common import credibility_rules  # noqa: E402
from bastion.research.agents.research import ResearchService  # noqa: E402
from bastion.research.corpus import hotpotqa_documents  # noqa: E402
from bastion.research.engine import ResearchEngine  # noqa: E402
from bastion.research.ports import LocalCritic, LocalResearcher  # noqa: E402
from bastion.research.protocol import FINAL_EVENTS, StartParams  # noqa: E402
from bastion.research.providers import ProviderSet  # noqa: E402
from bastion.research.researcher import Researcher  # noqa: E402
from bastion.research.retrieval import CorpusIndex  # noqa: E402
from bastion.research.store import ResearchStore  # noqa: E402
from bastion.research.text import CITATION_RE, answer_scores, normalize_answer  # noqa: E402
from bastion.security import resolve  # noqa: E402
from bastion.storage import LocalObjectStore, shared_engine  # noqa: E402
from bastion.testing.pipeline_stack import assign_ports  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets" / "research"
BM25_AT = 5
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


def _ask(gateway: str, key: str, question: str) -> tuple[dict[str, Any], float, float]:
    """The result object of one research run over WS /ws/research, its seconds, and the
    seconds from the question sent to the first event."""
    url = gateway.replace("http://", "ws://") + "/ws/research"
    protocols = [Subprotocol("bastion.v1"), Subprotocol(f"bearer.{key}")]
    started = time.perf_counter()
    with connect(url, subprotocols=protocols) as ws:
        sent = time.perf_counter()
        ws.send(json.dumps({"message": question, "mode": "research"}))
        first: float | None = None
        while True:
            event = json.loads(ws.recv(timeout=120))
            if first is None:
                first = time.perf_counter() - sent
            if event["type"] == "done":
                return event["result"], time.perf_counter() - started, first
            if event["type"] in ("error", "cancelled"):
                raise RuntimeError(f"run ended with {event}")


async def _in_process(settings: Settings, questions: list[str]) -> float:
    """Seconds for the same runs in this process with no HTTP and no security: the research
    agent's own service (the run and its report recorded as the agent records them) over the
    engine with the researcher and critic called in place, each run followed to its `done`."""
    providers = ProviderSet(settings)
    core = Researcher(
        providers.for_owner,
        credibility_rules(settings),
        passages_per_question=settings.research.passages_per_question,
    )
    engine = ResearchEngine(
        LocalResearcher(core),
        LocalCritic(min_credibility=settings.research.min_credibility),
        settings.research,
    )
    service = ResearchService(
        engine,
        ResearchStore(shared_engine(settings.database_url())),
        run_timeout_seconds=settings.research.run_timeout_seconds,
        objects=LocalObjectStore(settings.path(settings.pipeline.objects_dir)),
    )

    async def run(question: str) -> None:
        started = await service.start(StartParams(message=question, mode="research"), "bench", "")
        live = service.runs.get(started["id"], "bench")
        assert live is not None
        async for event in live.follow():
            if event["type"] in FINAL_EVENTS:
                assert event["type"] == "done", event
                return

    await run(WARM_UP)  # the corpus index is built: not measured
    started = time.perf_counter()
    for question in questions:
        await run(question)
    elapsed = time.perf_counter() - started
    await providers.aclose()
    return elapsed


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
        f"| same runs in one process, no HTTP, no security | {cost['local_s']:.2f} |",
        f"| share spent crossing services (HTTP hops + zero trust; target <= 10%) "
        f"| {cost['share']:.1%} |",
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
        key = resolve(settings.pipeline.submit_api_key or "", settings.base_dir).get()
        index = CorpusIndex(corpus_file)
        rows: dict[str, list[dict[str, Any]]] = {"even (tuned)": [], "odd (held out)": []}
        latencies: dict[str, list[float]] = {"even (tuned)": [], "odd (held out)": []}
        firsts: dict[str, list[float]] = {"even (tuned)": [], "odd (held out)": []}
        with _served(config, settings) as gateway:
            _ask(gateway, key, WARM_UP)  # the corpus index is built: not measured
            secure = 0.0
            for i, item in enumerate(items):
                half = "even (tuned)" if i % 2 == 0 else "odd (held out)"
                result, seconds, first = _ask(gateway, key, item["question"])
                rerun, _, _ = _ask(gateway, key, item["question"])
                secure += seconds
                latencies[half].append(seconds)
                firsts[half].append(first)
                rows[half].append(_score(item, result, rerun, index))
                print(f"  {i + 1}/{len(items)} {seconds:.2f}s", file=sys.stderr, flush=True)
        local = asyncio.run(_in_process(settings, [item["question"] for item in items]))
    halves = {h: _summary(rows[h], latencies[h], firsts[h]) for h in rows if rows[h]}
    for summary in halves.values():
        summary["gain"] = summary["recall"] - summary["bm25_same_k"]
    cost = {"secure_s": secure, "local_s": local, "share": max(0.0, 1 - local / secure)}
    print(f"\nResearch benchmark ({platform.machine()}, {len(items)} questions, offline)\n")
    print(_table(halves, cost))
    if args.json:
        args.json.write_text(json.dumps({"halves": halves, "security_cost": cost}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
