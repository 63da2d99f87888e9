"""The research store: the only code that reads and writes conversations and runs.

The research agent starts runs and finishes them (`done` with the result object, `failed` with
an error, or `cancelled`); the gateway reaches them through research methods, never through
the tables. Every read and every change takes the owner principal: another principal's run or
conversation is exactly like a missing one (None, or False for a change). A run changes state
once, from `running`; after a crash, `fail_orphans` marks the runs still `running` as failed.
Works on SQLite and PostgreSQL (tables from migration 0006); writes go through
`write_transaction`, and starting a run updates its conversation's row first, so concurrent
questions in one conversation take their places (`seq`) one after the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, func, insert, or_, select, update

from bastion.research.model import (
    Conversation,
    ConversationSummary,
    RequestedMode,
    ResearchResult,
    RunStarted,
    RunStatus,
    Turn,
    is_conversation_id,
    is_run_id,
    new_conversation_id,
    new_run_id,
)
from bastion.storage import (
    ResearchConversation,
    ResearchRun,
    decode_cursor,
    encode_cursor,
    write_transaction,
)

__all__ = ["MAX_LIST_LIMIT", "ConversationNotFoundError", "ResearchStore"]

_CONVERSATIONS = cast(Table, ResearchConversation.__table__)
_RUNS = cast(Table, ResearchRun.__table__)

MAX_LIST_LIMIT = 100
_TITLE_CHARS = 200
ORPHAN_ERROR = "interrupted: the research service stopped before the run finished; ask again"


class ConversationNotFoundError(LookupError):
    """The conversation does not exist or belongs to another principal (the same answer)."""

    def __init__(self) -> None:
        super().__init__("conversation not found: start a new one or pass one of yours")


def _turn(run: Any) -> Turn:
    result = ResearchResult.model_validate(run.result) if run.status == "done" else None
    return Turn(
        question=run.question,
        mode=result.mode if result is not None else run.mode,
        run_id=run.id,
        status=run.status,
        answer=result.answer if result is not None else None,
    )


class ResearchStore:
    """Conversations and runs in the database at `engine`; `clock` gives the time (Unix)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    # -- changes ------------------------------------------------------------------------------

    def create_conversation(self, owner: str) -> str:
        """A new, empty conversation of `owner`; its id."""
        conversation_id = new_conversation_id()
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(_CONVERSATIONS).values(
                    id=conversation_id, owner=owner, title=None, created_at=now, updated_at=now
                )
            )
        return conversation_id

    def start_run(
        self,
        owner: str,
        question: str,
        mode: RequestedMode,
        *,
        conversation_id: str | None = None,
        correlation_id: str | None = None,
    ) -> RunStarted:
        """A `running` run of `question`, the next turn of `conversation_id` (a new conversation
        when None). ConversationNotFoundError when the conversation is not `owner`'s."""
        now = self.clock()
        run_id = new_run_id()
        with write_transaction(self.engine) as conn:
            if conversation_id is None:
                conversation_id = new_conversation_id()
                conn.execute(
                    insert(_CONVERSATIONS).values(
                        id=conversation_id, owner=owner, created_at=now, updated_at=now
                    )
                )
            elif not self._touch(conn, conversation_id, owner, now):
                raise ConversationNotFoundError()
            conn.execute(
                update(_CONVERSATIONS)
                .where(_CONVERSATIONS.c.id == conversation_id, _CONVERSATIONS.c.title.is_(None))
                .values(title=question[:_TITLE_CHARS])
            )
            last = conn.scalar(
                select(func.max(_RUNS.c.seq)).where(_RUNS.c.conversation_id == conversation_id)
            )
            conn.execute(
                insert(_RUNS).values(
                    id=run_id,
                    conversation_id=conversation_id,
                    seq=(last or 0) + 1,
                    owner=owner,
                    question=question,
                    mode=mode,
                    status="running",
                    correlation_id=correlation_id,
                    started_at=now,
                )
            )
        return RunStarted(id=run_id, conversation_id=conversation_id)

    def finish_run(self, run_id: str, result: ResearchResult, *, owner: str) -> bool:
        """Mark `owner`'s running run done with `result` (whose ids must be the run's).
        False when there is no such running run."""
        if result.id != run_id:
            raise ValueError("result id is not the run's id: finish the run the result is for")
        return self._end(
            run_id,
            owner,
            {"status": "done", "result": result.model_dump(mode="json")},
            result.conversation_id,
        )

    def fail_run(self, run_id: str, error: str, *, owner: str) -> bool:
        """Mark `owner`'s running run failed with `error` (shown to its owner: no secrets)."""
        return self._end(run_id, owner, {"status": "failed", "error": error})

    def cancel_run(self, run_id: str, *, owner: str) -> bool:
        """Mark `owner`'s running run cancelled. False when it is not running (or not theirs)."""
        return self._end(run_id, owner, {"status": "cancelled"})

    def fail_orphans(self, *, before: float, error: str = ORPHAN_ERROR) -> int:
        """Mark failed every run still `running` that started before `before` (left by a
        crash: call it at start-up with the start time). How many there were."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(_RUNS)
                .where(_RUNS.c.status == "running", _RUNS.c.started_at < before)
                .values(status="failed", error=error, finished_at=now)
            )
        return int(changed.rowcount)

    def _touch(self, conn: Connection, conversation_id: str, owner: str, now: float) -> bool:
        """Set the conversation's `updated_at` (locking its row); whether it is `owner`'s."""
        if not is_conversation_id(conversation_id):
            return False
        touched = conn.execute(
            update(_CONVERSATIONS)
            .where(_CONVERSATIONS.c.id == conversation_id, _CONVERSATIONS.c.owner == owner)
            .values(updated_at=now)
        )
        return int(touched.rowcount) == 1

    def _end(
        self,
        run_id: str,
        owner: str,
        values: dict[str, Any],
        conversation_id: str | None = None,
    ) -> bool:
        """End `owner`'s running run with `values` (in `conversation_id` when given)."""
        if not is_run_id(run_id):
            return False
        now = self.clock()
        with write_transaction(self.engine) as conn:
            found = conn.scalar(
                select(_RUNS.c.conversation_id).where(
                    _RUNS.c.id == run_id, _RUNS.c.owner == owner, _RUNS.c.status == "running"
                )
            )
            if found is None or conversation_id not in (None, found):
                return False
            # Lock the conversation, then change the run only if it is still running (another
            # writer may have ended it meanwhile).
            self._touch(conn, found, owner, now)
            changed = conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id, _RUNS.c.status == "running")
                .values(finished_at=now, **values)
            )
            return int(changed.rowcount) == 1

    # -- reads --------------------------------------------------------------------------------

    def get_run(self, run_id: str, *, owner: str) -> RunStatus | None:
        """`owner`'s run as its status (with the result or error), or None."""
        if not is_run_id(run_id):
            return None
        with self.engine.connect() as conn:
            run = conn.execute(
                select(_RUNS.c.id, _RUNS.c.status, _RUNS.c.result, _RUNS.c.error).where(
                    _RUNS.c.id == run_id, _RUNS.c.owner == owner
                )
            ).first()
        if run is None:
            return None
        result = ResearchResult.model_validate(run.result) if run.status == "done" else None
        error = run.error if run.status == "failed" else None
        return RunStatus(id=run.id, status=run.status, result=result, error=error)

    def list_conversations(
        self, owner: str, *, cursor: str | None = None, limit: int = 20
    ) -> tuple[list[ConversationSummary], str | None]:
        """`owner`'s conversations, newest first, keyset-paginated on (created_at, id).

        Returns a page and the cursor of the next page (None on the last page); pages stay
        stable while conversations are added. ValueError for a bad cursor.
        """
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        conv = _CONVERSATIONS.c
        stmt = select(conv.id, conv.title, conv.created_at, conv.updated_at).where(
            conv.owner == owner
        )
        if cursor is not None:
            try:
                created_at, conversation_id = decode_cursor(cursor)
            except ValueError:
                raise ValueError(
                    "invalid cursor: pass the cursor of the previous page as given"
                ) from None
            stmt = stmt.where(
                or_(
                    conv.created_at < created_at,
                    and_(conv.created_at == created_at, conv.id < conversation_id),
                )
            )
        stmt = stmt.order_by(conv.created_at.desc(), conv.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        page = [
            ConversationSummary(
                id=row.id, title=row.title, created_at=row.created_at, updated_at=row.updated_at
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return page, next_cursor

    def get_conversation(self, conversation_id: str, *, owner: str) -> Conversation | None:
        """`owner`'s conversation with its turns in order, or None."""
        if not is_conversation_id(conversation_id):
            return None
        with self.engine.connect() as conn:
            head = conn.execute(
                select(_CONVERSATIONS).where(
                    _CONVERSATIONS.c.id == conversation_id, _CONVERSATIONS.c.owner == owner
                )
            ).first()
            if head is None:
                return None
            runs = conn.execute(
                select(_RUNS)
                .where(_RUNS.c.conversation_id == conversation_id)
                .order_by(_RUNS.c.seq)
            ).all()
        return Conversation(
            id=head.id,
            owner=head.owner,
            created_at=head.created_at,
            updated_at=head.updated_at,
            turns=[_turn(run) for run in runs],
        )
