"""Observability: structured logs, metrics."""
