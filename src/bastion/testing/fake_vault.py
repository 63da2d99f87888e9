"""A tiny HashiCorp Vault stand-in speaking the KV version 2 read API, for tests.

`GET /v1/<mount>/data/<path>[?version=N]` answers the latest (or the asked) version of a
secret: 403 when `X-Vault-Token` is missing or wrong (compared in constant time), 404 when
the path holds nothing. `put` adds a version (a rotation); `requests` counts reads.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["FakeVault"]


class FakeVault:
    """KV v2 secrets under one mount, guarded by one token."""

    def __init__(self, token: str, mount: str = "secret") -> None:
        self.token = token
        self.mount = mount
        self.requests = 0
        self._versions: dict[str, list[dict[str, Any]]] = {}
        self.app = Starlette(
            routes=[Route("/v1/{mount}/data/{path:path}", self._read, methods=["GET"])]
        )

    def put(self, path: str, data: dict[str, Any]) -> int:
        """Store a new version of the secret at `path`; returns its version number."""
        versions = self._versions.setdefault(path, [])
        versions.append(dict(data))
        return len(versions)

    async def _read(self, request: Request) -> JSONResponse:
        self.requests += 1
        given = request.headers.get("x-vault-token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return JSONResponse({"errors": ["permission denied"]}, status_code=403)
        versions = self._versions.get(request.path_params["path"])
        if request.path_params["mount"] != self.mount or not versions:
            return JSONResponse({"errors": []}, status_code=404)
        wanted = request.query_params.get("version")
        number = int(wanted) if wanted and wanted.isdigit() else len(versions)
        if not 1 <= number <= len(versions):
            return JSONResponse({"errors": []}, status_code=404)
        metadata = {
            "created_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "deletion_time": "",
            "destroyed": False,
            "version": number,
        }
        return JSONResponse({"data": {"data": versions[number - 1], "metadata": metadata}})
