"""Uploads to the pipeline gateway's `POST /api/documents` as `bastion submit` does, from many
threads at once (one keep-alive client per thread), for the scale test and the benchmarks."""

from __future__ import annotations

import threading
import time

import httpx

from bastion.config import Settings
from bastion.security import resolve

# An answer the gateway means to be retried, how often, and the longest wait it may ask for.
RETRYABLE = frozenset({429, 503})
RETRIES = 10
MAX_WAIT_SECONDS = 5.0


class Uploader:
    """Uploads PDFs with the project's `pipeline.submit_api_key`; safe to share between threads."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.pipeline.gateway_url + "/api/documents"
        ref = settings.pipeline.submit_api_key
        if not ref:
            raise ValueError("the project has no pipeline.submit_api_key: run `bastion init`")
        self.headers = {"X-API-Key": resolve(ref, settings.base_dir).get()}
        self.local = threading.local()

    def upload(self, data: bytes, name: str) -> tuple[str, float]:
        """(the document's id, the wall-clock time the upload started); a 429 or 503 is tried
        again after its `Retry-After`, as `bastion submit`'s users would."""
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=60, trust_env=False)
        started = time.time()
        for _attempt in range(RETRIES):
            resp = client.post(
                self.url, files={"file": (name, data, "application/pdf")}, headers=self.headers
            )
            if resp.status_code not in RETRYABLE:
                break
            # The gateway asks to come back (a busy or restarting archive, a rate limit).
            time.sleep(min(float(resp.headers.get("retry-after") or 1), MAX_WAIT_SECONDS))
        if resp.status_code not in (200, 202):
            raise RuntimeError(f"upload refused: HTTP {resp.status_code} {resp.text[:200]}")
        return str(resp.json()["id"]), started
