"""The demo's research step: `bastion research` asks the running services a two-hop question
over the bundled corpus, as a user would, its live progress (plan, researchers' sources with
credibility, the critic's rounds) and its cited report shown as they arrive.

It runs the real command in a child process against the gateway of the running `bastion up`
services, so what the demo shows is exactly what the command shows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rich.console import Console

from bastion.research.samples import DEMO_QUESTION

__all__ = ["EXPECTED_ANSWER", "ask"]

EXPECTED_ANSWER = "1832"  # Gustave Eiffel's birth year, found through the bridge
_TIMEOUT_SECONDS = 120


def ask(console: Console, config: Path) -> bool:
    """Ask `DEMO_QUESTION` with the submitter's key; True when the report gives the answer."""
    console.print(f"  $ bastion research {DEMO_QUESTION!r}")
    console.print()
    done = subprocess.run(  # noqa: S603 (our own CLI, fixed arguments)
        [sys.executable, "-m", "bastion", "research", DEMO_QUESTION, "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )  # its progress goes to stderr, live; its report to stdout, printed below
    console.print(done.stdout, markup=False, highlight=False)
    if done.returncode != 0:
        console.print(f"  [red]bastion research exited {done.returncode}[/]")
        return False
    found = EXPECTED_ANSWER in done.stdout
    mark = "[green]answered[/]" if found else "[red]the report lacks the answer[/]"
    console.print(f"  {mark}: the designer (first hop) was born in {EXPECTED_ANSWER} (second)")
    return found
