"""Bastion: a zero-trust multi-agent platform.

Public API: the agent client and the error type are re-exported here, so the internals can be
reorganised without breaking users.
"""

from bastion._version import __version__

__all__ = ["__version__"]
