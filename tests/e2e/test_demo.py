"""`bastion demo` end to end, as a real process: every step must behave as it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO_TIMEOUT = 120


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["COLUMNS"] = "200"  # no wrapped lines in the output
    return env


def test_demo_runs_every_step(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    res = subprocess.run(
        [sys.executable, "-m", "bastion", "demo", "--dir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    out = res.stdout
    assert res.returncode == 0, out + res.stderr

    # 1. allowed across two agents under one correlation ID
    assert "result: 'hello, zero trust' via relay" in out
    assert "(one ID across both hops)" in out
    # 2. a made-up key
    assert "HTTP 401, JSON-RPC error -32040: Unauthenticated" in out
    # 3. no grant
    assert "HTTP 403, JSON-RPC error -32041: Forbidden" in out
    # 4. the burst runs out of quota
    assert "429 Rate limited" in out
    # 5. the audit trail, verified
    assert "chain 'echo':" in out
    assert "chain 'relay':" in out
    chain_lines = [line for line in out.splitlines() if line.strip().startswith("chain '")]
    assert len(chain_lines) == 2
    assert all(line.rstrip().endswith("intact") for line in chain_lines), chain_lines
    assert "Demo complete." in out
    assert "unexpected" not in out

    # The trail the demo leaves behind passes an independent verification.
    verify = subprocess.run(
        [sys.executable, "-m", "bastion", "audit", "verify", "--config", "bastion.yaml"],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        env=_env(),
        cwd=workdir,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout
