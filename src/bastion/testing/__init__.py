"""Test support shipped with the package: run a real ASGI server on an ephemeral loopback port.

Used by the test suite, the benchmarks and the demo, so that all of them exercise real HTTP.
"""

from bastion.testing.live_server import LiveServer, serve_in_thread

__all__ = ["LiveServer", "serve_in_thread"]
