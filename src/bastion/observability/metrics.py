"""The Prometheus metrics every Bastion process exposes on `GET /metrics`.

Every metric is defined once, in prometheus-client's default registry: here for the modules
that count requests (the agent server, the security stages, the gateway, the WAF), and in
`bastion.guardrails.service` for the guardrails, which sit below this package (the log pipeline
uses them to take PII out of log lines). Labels never carry a secret, a principal's credential
or user-supplied text: `agent` is the serving process's own name, `method` a method of its
registry, a gateway action or a fixed route name (anything else is counted as `unknown`),
`outcome` one of the audit outcomes the code itself writes (`ok`, `denied:<stage>`,
`error:<code>`, ...).

Counted as requests are served:

    bastion_requests_total{agent, method, outcome}          calls, batch elements included
    bastion_request_duration_seconds{agent, method}         histogram of their latency
    bastion_auth_failures_total{agent}                      refused credentials (401)
    bastion_denials_total{agent, stage}                     refusals by the stage that refused
    bastion_rate_limit_hits_total{agent}                    calls refused with 429
    bastion_waf_matches_total{agent, rule_id, action}       WAF rule matches
    bastion_guardrail_events_total{action, source, direction}   (guardrails.service)
    bastion_guardrail_findings_total{type, action}              (guardrails.service)
    bastion_collector_errors_total{collector}               failed scrape-time reads
    bastion_http_responses_total{agent, route, status_class}
        every HTTP response and WebSocket handshake answer (`bastion.runtime.http_metrics`):
        `route` is the route's path template (`/api/documents/{id}`) or `unmatched`, never a
        raw path; `status_class` is `1xx` (an accepted WebSocket) to `5xx`

Set as outbound circuit breakers move (`bastion.runtime.CircuitBreaker` given a `metric_name`,
a fixed name such as `tavily`; or an agent client's replicas, under each configured address
`scheme://host:port`, a DNS name showing its most available resolved address; never user
input):

    bastion_circuit_state{name}                 0 closed, 1 half-open, 2 open
    bastion_circuit_transitions_total{name, state}   state changes, by the state entered

Read at scrape time (see `bastion.pipeline.collectors`): queue depth, age of its oldest waiting
message, dead-letter queue size, documents by status.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AUTH_FAILURES",
    "CIRCUIT_STATE",
    "CIRCUIT_STATE_VALUES",
    "CIRCUIT_TRANSITIONS",
    "COLLECTOR_ERRORS",
    "DENIALS",
    "HTTP_RESPONSES",
    "RATE_LIMIT_HITS",
    "REQUESTS",
    "REQUEST_DURATION",
    "UNKNOWN",
    "WAF_MATCHES",
    "http_response_counter",
    "observe_circuit_transition",
    "observe_request",
    "set_circuit_state",
]

# The `method` label of anything that is not a known method, action or route.
UNKNOWN = "unknown"
_DENIED = "denied:"
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

WAF_MATCHES = Counter(
    "bastion_waf_matches_total",
    "WAF rule matches by rule and by the action taken (BLOCK, COUNT)",
    ["agent", "rule_id", "action"],
)
REQUESTS = Counter(
    "bastion_requests_total",
    "Requests (JSON-RPC calls, batch elements included) by method and outcome",
    ["agent", "method", "outcome"],
)
REQUEST_DURATION = Histogram(
    "bastion_request_duration_seconds",
    "Time from a request's arrival to its answer, by method",
    ["agent", "method"],
    buckets=_LATENCY_BUCKETS,
)
AUTH_FAILURES = Counter(
    "bastion_auth_failures_total",
    "Requests refused because their credential was missing or invalid (401)",
    ["agent"],
)
DENIALS = Counter(
    "bastion_denials_total",
    "Requests refused by a security stage (authenticate, authorize, rate_limit, size_limit, ...)",
    ["agent", "stage"],
)
RATE_LIMIT_HITS = Counter(
    "bastion_rate_limit_hits_total",
    "Calls refused because the caller's rate limit was exhausted (429)",
    ["agent"],
)
HTTP_RESPONSES = Counter(
    "bastion_http_responses_total",
    "HTTP responses (and WebSocket handshake answers) by route template and status class",
    ["agent", "route", "status_class"],
)
COLLECTOR_ERRORS = Counter(
    "bastion_collector_errors_total",
    "Scrape-time reads (queue, documents) that failed; their samples are left out",
    ["collector"],
)

CIRCUIT_STATE = Gauge(
    "bastion_circuit_state",
    "State of an outbound circuit breaker: 0 closed, 1 half-open, 2 open",
    ["name"],
)
CIRCUIT_TRANSITIONS = Counter(
    "bastion_circuit_transitions_total",
    "Outbound circuit breaker state changes, by the state entered",
    ["name", "state"],
)
# The gauge's value of each breaker state (`bastion.runtime.BreakerState` values).
CIRCUIT_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


# The children of the per-request metrics by their labels, looked up once: label values are
# bounded, and `labels()` costs more than the increment itself on the hot path.
_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}


def _request_children(agent: str, method: str, outcome: str) -> tuple[Counter, Histogram]:
    key = (agent, method, outcome)
    children = _children.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), REQUEST_DURATION.labels(agent, method))
        _children[key] = children
    return children


_http_children: dict[tuple[str, str, str], Counter] = {}


def http_response_counter(agent: str, route: str, status_class: str) -> Counter:
    """The `bastion_http_responses_total` child of these (bounded) label values."""
    key = (agent, route, status_class)
    child = _http_children.get(key)
    if child is None:
        child = _http_children[key] = HTTP_RESPONSES.labels(*key)
    return child


def observe_request(agent: str, method: str, outcome: str, status: int, seconds: float) -> None:
    """Count one answered call. `method` and `outcome` must already be bounded label values."""
    requests, duration = _request_children(agent, method, outcome)
    requests.inc()
    duration.observe(seconds)
    if not outcome.startswith(_DENIED):
        return
    stage = outcome[len(_DENIED) :]
    DENIALS.labels(agent, stage).inc()
    if status == 401:
        AUTH_FAILURES.labels(agent).inc()
    elif status == 429:
        RATE_LIMIT_HITS.labels(agent).inc()


def set_circuit_state(name: str, state: str) -> None:
    """Show breaker `name` in `state` (`closed`, `half_open` or `open`)."""
    CIRCUIT_STATE.labels(name).set(CIRCUIT_STATE_VALUES[state])


def observe_circuit_transition(name: str, state: str) -> None:
    """Breaker `name` entered `state`: show it and count the transition."""
    set_circuit_state(name, state)
    CIRCUIT_TRANSITIONS.labels(name, state).inc()
