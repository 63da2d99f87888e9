"""`bastion demo` end to end, as a real process: every step must behave as it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO_TIMEOUT = 180


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["COLUMNS"] = "200"  # no wrapped lines in the output
    return env


# The whole demo (pipeline and research), on cores shared with the other worker's tests.
@pytest.mark.timeout(300)
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
    lines = out.splitlines()

    def row(name: str) -> str:
        return next(line for line in lines if f"│ {name}" in line)

    # 1. every service started
    services = ("archivist", "validator", "extractor", "orchestrator", "gateway", "worker")
    for service in (*services, "researcher", "critic", "research"):
        assert any(line.split()[:2] == [service, "ready:"] for line in lines), service
    # 2. the samples' results
    for name in ("invoice_en_line_items.pdf", "invoice_de.pdf", "invoice_fr.pdf"):
        assert "archived" in row(name) and "valid" in row(name) and "invalid" not in row(name)
    assert "INV-2024-0042" in row("invoice_en_line_items.pdf")
    assert "2324.4 GBP" in row("invoice_en_line_items.pdf")
    assert "invalid" in row("invoice_en_wrong_total.pdf")
    assert "arithmetic.invoice" in row("invoice_en_wrong_total.pdf")
    assert "duplicate.invoice" in row("invoice_de_duplicate.pdf")
    assert "contract" in row("contract_services.pdf")
    assert "report" in row("report_quarterly.pdf")
    assert "rejected: not_pdf" in row("not_a_pdf.pdf")
    # 3. least privilege
    assert "extractor -> archivist.archive: HTTP 403, JSON-RPC error -32041: Forbidden" in out
    assert "worker -> extractor.extract: HTTP 403, JSON-RPC error -32041: Forbidden" in out
    # 4. the burst runs out of quota
    assert "429 Rate limited" in out
    # 5. a research question: live progress (on stderr), then the cited report and the answer
    assert "bastion research 'When was the designer of the Eiffel Tower born?'" in out
    assert "plan, round 1:" in res.stderr and "Who designed the Eiffel Tower?" in res.stderr
    assert "next: When was Gustave Eiffel born?" in res.stderr  # the bridge, found first
    assert "source [credibility" in res.stderr and "critique, round 1:" in res.stderr
    assert "answered: the designer (first hop) was born in 1832" in out
    assert "Answer: 15 December 1832" in out and "[1] Eiffel Tower" in out
    # 6. one document's path
    assert "bastion audit tail --correlation" in out
    assert any("orchestrator" in line and "process_document" in line for line in lines)
    # 7. the audit trail, verified
    chain_lines = [line for line in lines if line.strip().startswith("chain '")]
    assert {line.split("'")[1] for line in chain_lines} == {
        "archivist",
        "critic",
        "extractor",
        "gateway",
        "orchestrator",
        "research",
        "researcher",
        "validator",
    }
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
