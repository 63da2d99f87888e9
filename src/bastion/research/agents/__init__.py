"""The research agents: `research` (the orchestrator), `researcher` and `critic`, each served
with `bastion serve NAME` (`definition(settings)`)."""
