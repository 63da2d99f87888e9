"""The alarm engine's own Prometheus metrics, served on the gateway's `/metrics`.

    bastion_alarm_target_up{target, instance}   1 when the last scrape of a target succeeded
    bastion_alarm_firing{alarm, severity}       1 while an alarm fires

Labels are configured names (agents, rules) and `host:port`, never user input.
"""

from __future__ import annotations

from prometheus_client import Gauge

__all__ = ["ALARM_FIRING", "TARGET_UP"]

TARGET_UP = Gauge(
    "bastion_alarm_target_up",
    "Whether the alarm engine's last scrape of a target succeeded (1) or not (0)",
    ["target", "instance"],
)
ALARM_FIRING = Gauge(
    "bastion_alarm_firing",
    "Whether an alarm rule of the gateway's alarm engine is firing (1) or not (0)",
    ["alarm", "severity"],
)
