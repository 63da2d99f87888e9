"""How the research agents are called: their names, methods, parameters and streamed events.

Three services, each its own principal:

* `research` (the orchestrator, port 8085). The gateway calls it; each method is the policy
  action `research.<method>`:

  - `ask {message, mode, conversation_id?}` (streams): starts a run and streams its events,
    from `conversation` to `done`, `error` or `cancelled`. The stream owns the run: a caller
    that leaves before the final event cancels it (`WS /ws/research`: one call per question).
  - `start {message, mode, conversation_id?}` -> `RunStarted`: starts a run in the background
    and answers at once (`POST /api/research`).
  - `follow {id}` (streams): a started run's events from its first, then live, ending with
    `done`, `error` or `cancelled`; following does not own the run.
  - `get {id}` -> `RunStatus`.
  - `cancel {id}` -> `RunStatus`.
  - `conversations {cursor?, limit?}` -> `{"conversations": [ConversationSummary],
    "next_cursor"}`.
  - `conversation {id}` -> `Conversation`.

  Every method acts for the asking principal, named by the delegation the call carries (its
  `sub`); a run or conversation of another principal is `RESEARCH_NOT_FOUND`, as a missing one.

* `researcher` (port 8086): `research` (streams) takes one sub-question and returns findings.
* `critic` (port 8087): `critique` (streams) returns `PASS`, `REFINE` or `FAIL` with reasons.

Events (`ask`, `follow`, `WS /ws/research`) are JSON objects with a `type`: see `EVENT_TYPES`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bastion.research.model import RequestedMode

__all__ = [
    "CRITIC",
    "EVENT_TYPES",
    "FINAL_EVENTS",
    "RESEARCH",
    "RESEARCHER",
    "RESEARCH_AGENTS",
    "ConversationRef",
    "ListConversationsParams",
    "RunRef",
    "StartParams",
]

RESEARCH = "research"
RESEARCHER = "researcher"
CRITIC = "critic"
# In the order `bastion up` starts them: the orchestrator needs the other two.
RESEARCH_AGENTS = (RESEARCHER, CRITIC, RESEARCH)

MAX_MESSAGE_CHARS = 4000
MAX_CONVERSATION_LIMIT = 100

# The events of a run, in the order they first appear:
#   conversation {conversation_id, id}             the run and its conversation (first event)
#   progress     {stage, message, ...}             what the run is doing now
#   plan         {round, sub_questions: [str]}     the planner's sub-questions for a round
#   source       {id, title, url, provider, credibility, reasons, researcher}
#   critique     {round, verdict, reasons}
#   text         {text}                            a chunk of the report, in order
#   done         {result}                          the result object (last event)
#   error        {message}                         the run failed (last event)
#   cancelled    {id}                              the run was cancelled (last event)
EVENT_TYPES = (
    "conversation",
    "progress",
    "plan",
    "source",
    "critique",
    "text",
    "done",
    "error",
    "cancelled",
)
FINAL_EVENTS = frozenset({"done", "error", "cancelled"})


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartParams(_Params):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    mode: RequestedMode = "auto"
    conversation_id: str | None = Field(default=None, max_length=64)


class RunRef(_Params):
    id: str = Field(max_length=64)


class ConversationRef(_Params):
    id: str = Field(max_length=64)


class ListConversationsParams(_Params):
    cursor: str | None = Field(default=None, max_length=512)
    limit: int = Field(default=20, ge=1, le=MAX_CONVERSATION_LIMIT)
