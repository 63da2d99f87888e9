#!/usr/bin/env bash
# Run the official A2A TCK (MUST level, JSON-RPC) against `bastion serve echo --tck`.
#
#   scripts/run-tck.sh TCK_DIR [extra run_tck.py arguments...]
#
# TCK_DIR is a checkout of https://github.com/a2aproject/a2a-tck (branch 1.0-dev). The TCK runs
# with its own Python environment, never Bastion's: by default TCK_DIR/.venv, created once with
#
#   python3 -m venv TCK_DIR/.venv && TCK_DIR/.venv/bin/pip install -e TCK_DIR
#
# (or `cd TCK_DIR && uv venv && uv pip install -e .`). Set TCK_PYTHON to use another
# interpreter that has the TCK's requirements installed.
#
# Bastion is taken from BASTION (a command), else this checkout's .venv/bin/bastion, else PATH.
# The script initialises a throw-away project in a temporary directory, grants the conformance
# principal `tck` every method with a quota the suite cannot exhaust, starts the agent on a free
# loopback port, waits for /healthz, runs the TCK from TCK_DIR, stops the agent and exits with
# the TCK's status. The agent's log is printed when the run fails; KEEP_WORK=1 keeps the
# temporary project (and the full log). Not part of CI.
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi

TCK_DIR=$(cd "$1" && pwd)
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ! -f "$TCK_DIR/run_tck.py" ]]; then
    echo "error: $TCK_DIR has no run_tck.py; pass the a2a-tck checkout" >&2
    exit 2
fi

TCK_PYTHON=${TCK_PYTHON:-$TCK_DIR/.venv/bin/python}
if [[ ! -x "$TCK_PYTHON" ]]; then
    echo "error: no TCK interpreter at $TCK_PYTHON" >&2
    echo "  create it: python3 -m venv $TCK_DIR/.venv && $TCK_DIR/.venv/bin/pip install -e $TCK_DIR" >&2
    echo "  or set TCK_PYTHON to a Python with the TCK's requirements" >&2
    exit 2
fi

if [[ -n "${BASTION:-}" ]]; then
    read -r -a BASTION_CMD <<< "$BASTION"
elif [[ -x "$REPO/.venv/bin/bastion" ]]; then
    BASTION_CMD=("$REPO/.venv/bin/bastion")
else
    BASTION_CMD=(bastion)
fi
# The interpreter that runs Bastion, for the small config edit below.
BASTION_PYTHON=${BASTION_PYTHON:-$REPO/.venv/bin/python}
[[ -x "$BASTION_PYTHON" ]] || BASTION_PYTHON=python3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bastion-tck.XXXXXX")
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "${KEEP_WORK:-}" ]]; then
        echo "== kept $WORK (agent log: $WORK/server.log)"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT INT TERM

echo "== initialising a project in $WORK"
"${BASTION_CMD[@]}" init --dir "$WORK" > "$WORK/init.log"

# The conformance principal may call everything, with a quota the suite cannot exhaust.
"$BASTION_PYTHON" - "$WORK" <<'PY'
import json
import pathlib
import sys

import yaml

work = pathlib.Path(sys.argv[1])
policy_path = work / "policy.json"
policy = json.loads(policy_path.read_text())
policy.setdefault("allow", {})["tck"] = ["*"]
policy_path.write_text(json.dumps(policy, indent=2) + "\n")

config_path = work / "bastion.yaml"
config = yaml.safe_load(config_path.read_text())
limits = config.setdefault("rate_limit", {})
principals = limits.get("principals") or {}
principals["tck"] = "100000/minute"
limits["principals"] = principals
config_path.write_text(yaml.safe_dump(config, sort_keys=False))
PY

PORT=$("$BASTION_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
URL="http://127.0.0.1:$PORT"

echo "== starting the echo agent (conformance profile) on $URL"
"${BASTION_CMD[@]}" serve echo --tck --config "$WORK/bastion.yaml" --host 127.0.0.1 --port "$PORT" \
    > "$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 1 120); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "error: the agent exited during start-up:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    if "$BASTION_PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "$URL/healthz" 2>/dev/null; then
        break
    fi
    sleep 0.25
done
if ! "$BASTION_PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$URL/healthz" 2>/dev/null; then
    echo "error: the agent did not become healthy at $URL/healthz" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi

echo "== running the A2A TCK (MUST, JSON-RPC) from $TCK_DIR"
set +e
(cd "$TCK_DIR" && "$TCK_PYTHON" run_tck.py --sut-host "$URL" --transport jsonrpc --level must "$@")
STATUS=$?
set -e

if [[ $STATUS -ne 0 ]]; then
    echo "== agent log (last 200 lines)"
    tail -n 200 "$WORK/server.log"
fi
echo "== TCK exit status: $STATUS (reports in $TCK_DIR/reports/)"
exit "$STATUS"
