"""Alarms: rules over the platform's Prometheus metrics, evaluated by the gateway.

The gateway scrapes its own and every agent's `/metrics` (`scrape`), computes each rule's value
as Prometheus would (`evaluate`), moves each alarm through pending, firing and resolved
(`state`) and posts firing and resolved alarms to webhooks through the egress perimeter
(`notify`); `service` runs the loop. `rules` loads the rules YAML (`alarms.rules_file`, else
the shipped `bastion/data/alarms.yaml`), `promql` writes each rule as PromQL and `export` as a
Prometheus rule group and a Grafana dashboard (`bastion alarms export`).
"""

from __future__ import annotations

from bastion.alarms.export import export_files
from bastion.alarms.notify import Delivery
from bastion.alarms.rules import AlarmRule, RulesError, load_rules
from bastion.alarms.scrape import ScrapeTarget, TargetStatus, targets_from
from bastion.alarms.service import AlarmService
from bastion.alarms.state import AlarmState, Status, Transition

__all__ = [
    "AlarmRule",
    "AlarmService",
    "AlarmState",
    "Delivery",
    "RulesError",
    "ScrapeTarget",
    "Status",
    "TargetStatus",
    "Transition",
    "export_files",
    "load_rules",
    "targets_from",
]
