"""Agent runtime: the server that composes the security stages, the client, the supervisor.

The rest of Bastion imports this face, never the package's modules (`bastion.faces`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.faces import lazy_attributes

if TYPE_CHECKING:
    from bastion.runtime.a2a_methods import A2AService as A2AService
    from bastion.runtime.a2a_methods import AgentOutput as AgentOutput
    from bastion.runtime.a2a_methods import ExecutionContext as ExecutionContext
    from bastion.runtime.a2a_methods import Executor as Executor
    from bastion.runtime.a2a_methods import TaskStore as TaskStore
    from bastion.runtime.a2a_methods import completed as completed
    from bastion.runtime.a2a_methods import input_required as input_required
    from bastion.runtime.a2a_methods import new_id as new_id
    from bastion.runtime.a2a_methods import register_a2a_methods as register_a2a_methods
    from bastion.runtime.a2a_methods import rejected as rejected
    from bastion.runtime.a2a_methods import working as working
    from bastion.runtime.agent import AgentApp as AgentApp
    from bastion.runtime.agent import AgentConfigError as AgentConfigError
    from bastion.runtime.agent import AgentDefinition as AgentDefinition
    from bastion.runtime.breaker import BreakerState as BreakerState
    from bastion.runtime.breaker import CircuitBreaker as CircuitBreaker
    from bastion.runtime.client import AgentClient as AgentClient
    from bastion.runtime.client import AgentUnreachable as AgentUnreachable
    from bastion.runtime.client import BreakerOpen as BreakerOpen
    from bastion.runtime.client import RpcCallError as RpcCallError
    from bastion.runtime.http_guard import Endpoint as Endpoint
    from bastion.runtime.http_guard import Guard as Guard
    from bastion.runtime.http_guard import Handler as Handler
    from bastion.runtime.http_guard import audit_detail as audit_detail
    from bastion.runtime.http_guard import denied_error as denied_error
    from bastion.runtime.http_guard import json_response as json_response
    from bastion.runtime.http_guard import request_context as request_context
    from bastion.runtime.http_metrics import count_responses as count_responses
    from bastion.runtime.methods import MethodRegistry as MethodRegistry
    from bastion.runtime.metrics_endpoint import metrics_route as metrics_route
    from bastion.runtime.parent_watch import stop_with_parent as stop_with_parent
    from bastion.runtime.peers import PeerClients as PeerClients
    from bastion.runtime.peers import credential as credential
    from bastion.runtime.peers import own_api_key as own_api_key
    from bastion.runtime.peers import peer_url as peer_url
    from bastion.runtime.serve import ServeError as ServeError
    from bastion.runtime.serve import is_loopback as is_loopback
    from bastion.runtime.serve import run as run
    from bastion.runtime.serve import uvicorn_config as uvicorn_config
    from bastion.runtime.supervisor import ChildSpec as ChildSpec
    from bastion.runtime.supervisor import Supervisor as Supervisor
    from bastion.runtime.supervisor import SupervisorError as SupervisorError
    from bastion.runtime.supervisor import SupervisorEvent as SupervisorEvent
    from bastion.runtime.supervisor import service_tls as service_tls
    from bastion.runtime.task_store_db import DatabaseTaskStore as DatabaseTaskStore
    from bastion.runtime.task_store_db import task_store_for as task_store_for
    from bastion.runtime.traces import CollectedTrace as CollectedTrace
    from bastion.runtime.traces import collect_trace as collect_trace
    from bastion.runtime.traces import start_tracing as start_tracing
    from bastion.runtime.traces import traces_route as traces_route

# Each public name and the module that defines it.
_EXPORTS = {
    "A2AService": "bastion.runtime.a2a_methods",
    "AgentApp": "bastion.runtime.agent",
    "AgentClient": "bastion.runtime.client",
    "AgentConfigError": "bastion.runtime.agent",
    "AgentDefinition": "bastion.runtime.agent",
    "AgentOutput": "bastion.runtime.a2a_methods",
    "AgentUnreachable": "bastion.runtime.client",
    "BreakerOpen": "bastion.runtime.client",
    "BreakerState": "bastion.runtime.breaker",
    "CircuitBreaker": "bastion.runtime.breaker",
    "ChildSpec": "bastion.runtime.supervisor",
    "completed": "bastion.runtime.a2a_methods",
    "request_context": "bastion.runtime.http_guard",
    "Handler": "bastion.runtime.http_guard",
    "denied_error": "bastion.runtime.http_guard",
    "Endpoint": "bastion.runtime.http_guard",
    "audit_detail": "bastion.runtime.http_guard",
    "ExecutionContext": "bastion.runtime.a2a_methods",
    "Executor": "bastion.runtime.a2a_methods",
    "Guard": "bastion.runtime.http_guard",
    "input_required": "bastion.runtime.a2a_methods",
    "is_loopback": "bastion.runtime.serve",
    "json_response": "bastion.runtime.http_guard",
    "count_responses": "bastion.runtime.http_metrics",
    "MethodRegistry": "bastion.runtime.methods",
    "metrics_route": "bastion.runtime.metrics_endpoint",
    "new_id": "bastion.runtime.a2a_methods",
    "register_a2a_methods": "bastion.runtime.a2a_methods",
    "rejected": "bastion.runtime.a2a_methods",
    "RpcCallError": "bastion.runtime.client",
    "run": "bastion.runtime.serve",
    "ServeError": "bastion.runtime.serve",
    "service_tls": "bastion.runtime.supervisor",
    "stop_with_parent": "bastion.runtime.parent_watch",
    "PeerClients": "bastion.runtime.peers",
    "credential": "bastion.runtime.peers",
    "own_api_key": "bastion.runtime.peers",
    "peer_url": "bastion.runtime.peers",
    "Supervisor": "bastion.runtime.supervisor",
    "SupervisorError": "bastion.runtime.supervisor",
    "SupervisorEvent": "bastion.runtime.supervisor",
    "TaskStore": "bastion.runtime.a2a_methods",
    "DatabaseTaskStore": "bastion.runtime.task_store_db",
    "task_store_for": "bastion.runtime.task_store_db",
    "uvicorn_config": "bastion.runtime.serve",
    "CollectedTrace": "bastion.runtime.traces",
    "collect_trace": "bastion.runtime.traces",
    "start_tracing": "bastion.runtime.traces",
    "traces_route": "bastion.runtime.traces",
    "working": "bastion.runtime.a2a_methods",
}

__all__ = [
    "A2AService",
    "AgentApp",
    "AgentClient",
    "AgentConfigError",
    "AgentDefinition",
    "AgentOutput",
    "AgentUnreachable",
    "BreakerOpen",
    "BreakerState",
    "ChildSpec",
    "CircuitBreaker",
    "CollectedTrace",
    "DatabaseTaskStore",
    "Endpoint",
    "ExecutionContext",
    "Executor",
    "Guard",
    "Handler",
    "MethodRegistry",
    "PeerClients",
    "RpcCallError",
    "ServeError",
    "Supervisor",
    "SupervisorError",
    "SupervisorEvent",
    "TaskStore",
    "audit_detail",
    "collect_trace",
    "completed",
    "count_responses",
    "credential",
    "denied_error",
    "input_required",
    "is_loopback",
    "json_response",
    "metrics_route",
    "new_id",
    "own_api_key",
    "peer_url",
    "register_a2a_methods",
    "rejected",
    "request_context",
    "run",
    "service_tls",
    "start_tracing",
    "stop_with_parent",
    "task_store_for",
    "traces_route",
    "uvicorn_config",
    "working",
]

if not TYPE_CHECKING:  # type checkers read the imports above, and check every name
    __getattr__ = lazy_attributes(__name__, _EXPORTS)
