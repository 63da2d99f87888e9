"""The HTTP face of the document pipeline: the gateway (`build_gateway(settings)`).

`gateway` composes the routes; `guard` authenticates, authorizes, rate limits and audits every
API request; `upload` reads a multipart upload within the size limit; `params` checks path and
query parameters; `storage` runs storage calls off the event loop and streams files back;
`archivist` maps the Archivist agent's answers to HTTP; `errors` is the JSON error shape;
`mcp_archive` serves the archive to MCP clients at `/mcp`.
"""

from bastion.web.gateway import build_gateway

__all__ = ["build_gateway"]
