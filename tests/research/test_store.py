"""The research store on SQLite and PostgreSQL: a run's life, owners, pagination, orphans."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bastion.research.model import ResearchResult, RunStatus, Turn, is_conversation_id, is_run_id
from bastion.research.store import ConversationNotFoundError, ResearchStore
from bastion.storage import shared_engine
from tests.research.test_model import result_data


class Clock:
    """A clock the test moves: each reading is one second after the last (or after `now`)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def store(db_url: str) -> ResearchStore:
    return ResearchStore(shared_engine(db_url), clock=Clock())


def _result(run_id: str, conversation_id: str, answer: str = "Ridley Scott") -> ResearchResult:
    return ResearchResult.model_validate(
        result_data(id=run_id, conversation_id=conversation_id, answer=answer)
    )


def test_the_whole_life_of_a_run(store: ResearchStore) -> None:
    started = store.start_run("alice", "Who directed Alien?", "auto", correlation_id="c-1")
    assert started.status == "running"
    assert is_run_id(started.id) and is_conversation_id(started.conversation_id)
    assert store.get_run(started.id, owner="alice") == RunStatus(id=started.id, status="running")

    result = _result(started.id, started.conversation_id)
    assert store.finish_run(started.id, result, owner="alice")
    assert store.get_run(started.id, owner="alice") == RunStatus(
        id=started.id, status="done", result=result
    )
    # A run ends once: it cannot be failed, cancelled or finished again.
    assert not store.fail_run(started.id, "late", owner="alice")
    assert not store.cancel_run(started.id, owner="alice")
    assert not store.finish_run(started.id, result, owner="alice")

    # A follow-up in the same conversation, failed; a third, cancelled.
    second = store.start_run(
        "alice", "And when was he born?", "research", conversation_id=started.conversation_id
    )
    assert second.conversation_id == started.conversation_id
    assert store.fail_run(second.id, "search provider unavailable: try again later", owner="alice")
    third = store.start_run("alice", "Hi!", "chat", conversation_id=started.conversation_id)
    assert store.cancel_run(third.id, owner="alice")
    assert store.get_run(second.id, owner="alice") == RunStatus(
        id=second.id, status="failed", error="search provider unavailable: try again later"
    )
    assert store.get_run(third.id, owner="alice") == RunStatus(id=third.id, status="cancelled")

    conversation = store.get_conversation(started.conversation_id, owner="alice")
    assert conversation is not None
    assert conversation.owner == "alice"
    assert conversation.turns == [
        # Once done, a turn shows the mode that ran (the result's), not `auto`.
        Turn(
            question="Who directed Alien?",
            mode="research",
            run_id=started.id,
            status="done",
            answer="Ridley Scott",
        ),
        Turn(question="And when was he born?", mode="research", run_id=second.id, status="failed"),
        Turn(question="Hi!", mode="chat", run_id=third.id, status="cancelled"),
    ]
    assert conversation.updated_at > conversation.created_at
    page, cursor = store.list_conversations("alice")
    assert cursor is None
    assert [(c.id, c.title) for c in page] == [(started.conversation_id, "Who directed Alien?")]


def test_a_result_must_belong_to_its_run(store: ResearchStore) -> None:
    run = store.start_run("alice", "Q?", "research")
    other = store.start_run("alice", "Other?", "research")
    with pytest.raises(ValueError, match="not the run's id"):
        store.finish_run(run.id, _result(other.id, run.conversation_id), owner="alice")
    # The right run id in another conversation's result is refused too.
    assert not store.finish_run(run.id, _result(run.id, other.conversation_id), owner="alice")
    assert store.get_run(run.id, owner="alice") == RunStatus(id=run.id, status="running")


def test_another_principal_sees_and_changes_nothing(store: ResearchStore) -> None:
    mine = store.start_run("alice", "Secret question?", "research")
    empty = store.create_conversation("alice")
    for conversation_id in (mine.conversation_id, empty):
        assert store.get_conversation(conversation_id, owner="bob") is None
        with pytest.raises(ConversationNotFoundError):
            store.start_run("bob", "Mine now?", "chat", conversation_id=conversation_id)
    assert store.get_run(mine.id, owner="bob") is None
    assert store.list_conversations("bob") == ([], None)
    assert not store.cancel_run(mine.id, owner="bob")
    assert not store.fail_run(mine.id, "x", owner="bob")
    assert not store.finish_run(mine.id, _result(mine.id, mine.conversation_id), owner="bob")
    # Exactly like a missing one.
    assert store.get_run("run_" + "a" * 26, owner="bob") is None
    assert store.get_conversation("conv_" + "a" * 26, owner="bob") is None
    assert store.get_run("not an id", owner="alice") is None
    with pytest.raises(ConversationNotFoundError):
        store.start_run("bob", "Q?", "chat", conversation_id="conv_" + "a" * 26)
    # Alice's data is untouched.
    assert store.get_run(mine.id, owner="alice") == RunStatus(id=mine.id, status="running")
    conversation = store.get_conversation(mine.conversation_id, owner="alice")
    assert conversation is not None and [t.run_id for t in conversation.turns] == [mine.id]
    empty_conversation = store.get_conversation(empty, owner="alice")
    assert empty_conversation is not None and empty_conversation.turns == []


def test_conversations_page_newest_first_with_an_opaque_cursor(store: ResearchStore) -> None:
    created = [store.start_run("alice", f"Question {i}?", "chat").conversation_id for i in range(7)]
    store.start_run("bob", "Bob's question?", "chat")
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list_conversations("alice", cursor=cursor, limit=3)
        pages.append([c.id for c in page])
        if cursor is None:
            break
        assert "alice" not in cursor and "Question" not in cursor
        # A conversation started between pages does not shift the next page.
        if len(pages) == 1:
            store.create_conversation("alice")
    newest_first = created[::-1]
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]
    first_page, _ = store.list_conversations("alice", limit=1)
    assert first_page[0].title is None  # the one created between pages: no question yet
    for bad in ("not-base64!", "W10", "WyJ4IiwieSJd"):
        with pytest.raises(ValueError, match="invalid cursor"):
            store.list_conversations("alice", cursor=bad)


def test_runs_left_running_by_a_crash_are_failed(db_url: str) -> None:
    clock = Clock(start=100.0)
    store = ResearchStore(shared_engine(db_url), clock=clock)
    old = store.start_run("alice", "Old?", "research")
    done = store.start_run("alice", "Done?", "research")
    assert store.finish_run(done.id, _result(done.id, done.conversation_id), owner="alice")
    clock.now = 200.0  # the service restarts at 200
    fresh = store.start_run("bob", "Fresh?", "research")
    assert store.fail_orphans(before=200.0) == 1
    orphan = store.get_run(old.id, owner="alice")
    assert orphan is not None and orphan.status == "failed"
    assert orphan.error is not None and "ask again" in orphan.error
    assert store.get_run(fresh.id, owner="bob") == RunStatus(id=fresh.id, status="running")
    finished = store.get_run(done.id, owner="alice")
    assert finished is not None and finished.status == "done"
    assert store.fail_orphans(before=200.0) == 0


def test_questions_asked_at_once_in_one_conversation_take_their_turns(db_url: str) -> None:
    store = ResearchStore(shared_engine(db_url))
    conversation_id = store.create_conversation("alice")
    questions = [f"Question {i}?" for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        started = list(
            pool.map(
                lambda q: store.start_run("alice", q, "chat", conversation_id=conversation_id),
                questions,
            )
        )
    conversation = store.get_conversation(conversation_id, owner="alice")
    assert conversation is not None
    assert sorted(t.run_id for t in conversation.turns) == sorted(s.id for s in started)
    assert sorted(t.question for t in conversation.turns) == questions
