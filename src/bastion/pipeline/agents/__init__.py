"""The document pipeline's four agents: orchestrator, extractor, validator, archivist.

Each is a separate service on the agent runtime with its own principal and credential; each
module exposes `definition(settings) -> AgentDefinition`.
"""
