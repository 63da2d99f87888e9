"""The result object, a run's status and the research ids: what validates and what does not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from bastion.research.model import (
    ResearchResult,
    RunStatus,
    is_conversation_id,
    is_run_id,
    new_conversation_id,
    new_run_id,
)


def result_data(**changes: Any) -> dict[str, Any]:
    """A valid result object as JSON data (two sources, a report citing both)."""
    data: dict[str, Any] = {
        "id": new_run_id(),
        "conversation_id": new_conversation_id(),
        "question": "Who directed Alien?",
        "mode": "research",
        "answer": "Ridley Scott",
        "report": "**Answer:** Ridley Scott\n\nAlien was directed by Ridley Scott [1]. It came "
        "out in 1979 [2][1].\n\n## Sources\n[1] Alien (film)\n[2] Ridley Scott",
        "plan": ["Who directed Alien?"],
        "sources": [
            {
                "n": 1,
                "id": "alien",
                "title": "Alien (film)",
                "url": None,
                "provider": "corpus",
                "credibility": 0.8,
                "snippet": "Alien is a 1979 film directed by Ridley Scott.",
            },
            {
                "n": 2,
                "id": "scott",
                "title": "Ridley Scott",
                "url": "https://example.org/scott",
                "provider": "tavily",
                "credibility": 0.6,
                "snippet": "Sir Ridley Scott is an English film director.",
            },
        ],
        "quarantined": [{"id": "bad", "title": "Bad page", "reason": "prompt injection"}],
        "critique": [{"round": 1, "verdict": "PASS", "reasons": []}],
        "rounds": 1,
        "model": "offline",
        "correlation_id": "corr-1",
        "elapsed_ms": 12,
        "notes": [],
    }
    data.update(changes)
    return data


def test_a_result_object_round_trips_with_exactly_the_issue_keys_and_notes() -> None:
    """The issue's keys, in its order, then `notes`: how the result was made (a model step
    that fell back to the offline path says so there)."""
    data = result_data()
    result = ResearchResult.model_validate(data)
    dumped = result.model_dump(mode="json")
    assert dumped == data
    assert list(dumped) == [
        "id",
        "conversation_id",
        "question",
        "mode",
        "answer",
        "report",
        "plan",
        "sources",
        "quarantined",
        "critique",
        "rounds",
        "model",
        "correlation_id",
        "elapsed_ms",
        "notes",
    ]
    assert list(dumped["sources"][0]) == [
        "n",
        "id",
        "title",
        "url",
        "provider",
        "credibility",
        "snippet",
    ]
    assert ResearchResult.model_validate_json(json.dumps(data)) == result


def test_a_citation_without_a_source_is_refused() -> None:
    data = result_data(report="Alien was directed by Ridley Scott [1], released in 1979 [3].")
    with pytest.raises(ValidationError, match=r"citation \[3\] names no entry of sources"):
        ResearchResult.model_validate(data)


def test_a_report_citing_nothing_or_only_known_sources_is_accepted() -> None:
    assert ResearchResult.model_validate(result_data(report="No sources were needed."))
    one_source = result_data(report="Ridley Scott [2].")
    assert ResearchResult.model_validate(one_source).report == "Ridley Scott [2]."


def test_sources_need_distinct_numbers() -> None:
    data = result_data()
    data["sources"][1]["n"] = 1
    with pytest.raises(ValidationError, match="its own number"):
        ResearchResult.model_validate(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "auto"),
        ("model", "gpt-4o"),
        ("model", ""),
        ("elapsed_ms", -1),
        ("critique", [{"round": 1, "verdict": "MAYBE", "reasons": []}]),
        ("unexpected", 1),
    ],
)
def test_malformed_results_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        ResearchResult.model_validate(result_data(**{field: value}))


def test_a_provider_model_name_is_accepted() -> None:
    result = ResearchResult.model_validate(result_data(model="openai:gpt-4o-mini"))
    assert result.model == "openai:gpt-4o-mini"


def test_a_run_status_carries_a_result_only_when_done_and_an_error_only_when_failed() -> None:
    data = result_data()
    result = ResearchResult.model_validate(data)
    done = RunStatus(id=result.id, status="done", result=result)
    assert done.model_dump(mode="json") == {"id": result.id, "status": "done", "result": data}
    assert RunStatus(id="r", status="failed", error="boom").model_dump() == {
        "id": "r",
        "status": "failed",
        "error": "boom",
    }
    assert RunStatus(id="r", status="running").model_dump() == {"id": "r", "status": "running"}
    for bad in (
        {"status": "done"},
        {"status": "running", "result": result},
        {"status": "failed"},
        {"status": "cancelled", "error": "boom"},
        {"status": "paused"},
    ):
        with pytest.raises(ValidationError):
            RunStatus.model_validate({"id": "r", **bad})


def test_ids_are_opaque_distinct_and_checked() -> None:
    runs = {new_run_id() for _ in range(50)}
    conversations = {new_conversation_id() for _ in range(50)}
    assert len(runs) == len(conversations) == 50
    assert all(is_run_id(r) and not is_conversation_id(r) for r in runs)
    assert all(is_conversation_id(c) and not is_run_id(c) for c in conversations)
    for bad in ("", "run_", "run_" + "A" * 26, "../etc", None, 7):
        assert not is_run_id(bad)
        assert not is_conversation_id(bad)
