"""Where an agent is reached, and how Bastion's own client names itself on the wire.

The agent server answers JSON-RPC on these paths; the edge WAF, which sits below the runtime,
needs the same facts (which path is the JSON-RPC endpoint, which User-Agent is our own client).
"""

from __future__ import annotations

from bastion._version import __version__

__all__ = ["DELEGATION_HEADER", "MESSAGE_PATH", "MESSAGE_PATHS", "USER_AGENT"]

MESSAGE_PATH = "/message"
# The JSON-RPC endpoint, with or without a trailing slash (clients that join "/" to the card's
# interface URL, like the A2A TCK, post to "/message/").
MESSAGE_PATHS = frozenset({MESSAGE_PATH, MESSAGE_PATH + "/"})
USER_AGENT = f"bastion-agent-client/{__version__}"
# A call made on someone's behalf carries its delegation token here (see
# `bastion.security.delegation`), beside the caller's own credential.
DELEGATION_HEADER = "X-Bastion-Delegation"
