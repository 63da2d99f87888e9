"""`bastion init`: lay out a working directory with config, policy, secrets and database.

Writes `DIR/bastion.yaml`, `DIR/policy.json`, `DIR/secrets/*` (folder 0700, files 0600,
referenced from the config, never inlined), migrates the database (the SQLite file, or the one
`database_url` names, e.g. PostgreSQL, written to the config), creates the first
`admin` key (printed once) and each service principal's credential (the pipeline and research
agents, the worker and the gateway), stored as a secret file that the config references.

A folder that already holds a project (its config, policy, secrets, database, queue, audit
checkpoints or objects) is refused, naming what is there and what `--force` would do. With
`force`, bastion.yaml and policy.json are rewritten from the defaults and a new admin key is
created; every secret file that exists is kept (the audit key, so the audit trail still
verifies; the pepper and the signing keys, so existing keys and tokens keep working; the
service credentials, when the database is kept). Keys are replaced with `bastion keys rotate`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bastion.config import ConfigError, load_settings
from bastion.security import build_api_key_store, generate_signing_keyset, write_secret_file
from bastion.storage import display_url, migrate

CONFIG_TEMPLATE = """\
# Bastion configuration. Environment overrides: BASTION_<SECTION>__<KEY>
# (for example BASTION_RATE_LIMIT__DEFAULT=600/minute).
# Secrets are never written here, only references: secret://env/NAME, secret://file/PATH.
server:
  host: 127.0.0.1
  port: 8080
  max_body_bytes: 1048576
  max_batch: 50
database:
  url: sqlite:///bastion.db
auth:
  pepper: secret://file/secrets/api-key-pepper
  pepper_version: 1
  api_key_cache_seconds: 2
  jwt:
    issuers: []
  token_service:
    signing_keys: secret://file/secrets/token-signing.jwks.json
    ttl_seconds: 300
policy:
  file: policy.json
rate_limit:
  # Counted in this process's memory; set redis_url (redis://HOST:6379/0) to share the counts
  # between replicas in Redis.
  default: 300/minute
  # Internal service principals get limits that match their workload, so the limiter stays on
  # without becoming the pipeline's bottleneck.
  principals:
    monitoring: 60/minute
    worker: 100000/minute
    gateway: 100000/minute
    orchestrator: 100000/minute
    extractor: 100000/minute
    validator: 100000/minute
    archivist: 100000/minute
    research: 100000/minute
    researcher: 100000/minute
    critic: 100000/minute
    submitter: 100000/minute
    lambda-s3-processor: 100000/minute
audit:
  hmac_key: secret://file/secrets/audit.key
  checkpoint_dir: audit-checkpoints
agents:
  echo:
    url: http://127.0.0.1:8090
    monitored: false  # a reference agent that `bastion up` does not start
  orchestrator:
    url: http://127.0.0.1:8081
    api_key: secret://file/secrets/orchestrator.key
  extractor:
    url: http://127.0.0.1:8082
    api_key: secret://file/secrets/extractor.key
  validator:
    url: http://127.0.0.1:8083
    api_key: secret://file/secrets/validator.key
  archivist:
    url: http://127.0.0.1:8084
    api_key: secret://file/secrets/archivist.key
  research:
    url: http://127.0.0.1:8085
    api_key: secret://file/secrets/research.key
  researcher:
    url: http://127.0.0.1:8086
    api_key: secret://file/secrets/researcher.key
  critic:
    url: http://127.0.0.1:8087
    api_key: secret://file/secrets/critic.key
pipeline:
  object_store_url: objects
  queue_url: sqlite:///queue.db
  worker_concurrency: 8
  worker_api_key: secret://file/secrets/worker.key
  gateway_api_key: secret://file/secrets/gateway.key
  # The key `bastion submit` uploads with (principal `submitter`).
  submit_api_key: secret://file/secrets/submitter.key
  gateway_url: http://127.0.0.1:8080
  max_upload_bytes: 26214400
# Deep research (`research`, `researcher` and `critic` agents). Sources: the archive (each
# user's own documents), plus `corpus` when set (a folder of .txt/.md/.pdf or a .json file)
# and Tavily web search when research.tavily.api_key_ref is set. No model: every step runs on
# the deterministic offline path (set research.model to a model endpoint to use one).
research:
  corpus: null
  researchers: 4
  max_rounds: 2
  min_credibility: 0.5
  passages_per_question: 10
  run_timeout_seconds: 120
"""

# Each service principal's own credential, created by `bastion init`.
SERVICE_PRINCIPALS = (
    "orchestrator",
    "extractor",
    "validator",
    "archivist",
    "worker",
    "gateway",
    "research",
    "researcher",
    "critic",
)
# Client principals with a stored credential: `submitter` is what `bastion submit` uses;
# `lambda-s3-processor` is the AWS Lambda that processes a bucket's S3 events (`bastion.aws`):
# copy its key into Secrets Manager and name it in the Lambda's BASTION_API_KEY_REF.
CLIENT_PRINCIPALS = ("submitter", "lambda-s3-processor")

# The gateway and every agent of the shipped configuration: the processes whose `/metrics` the
# gateway's alarm engine (`bastion.alarms`) scrapes and whose `/traces` the console gathers.
SHIPPED_PROCESSES = (
    "gateway",
    "echo",
    "orchestrator",
    "extractor",
    "validator",
    "archivist",
    "research",
    "researcher",
    "critic",
)
METRICS_SCRAPED = [f"{name}.metrics" for name in SHIPPED_PROCESSES]
TRACES_READ = [f"{name}.traces" for name in SHIPPED_PROCESSES]

# Least privilege: each principal may call exactly what the document flow needs of it.
DEFAULT_POLICY = {
    "allow": {
        "worker": [
            "orchestrator.process_document",
            "archivist.record_upload",  # the objects of S3 event notifications
            "archivist.set_status",
            "archivist.stale_documents",
            "archivist.move_document",
        ],
        "orchestrator": [
            "extractor.extract",
            "validator.validate",
            "archivist.archive",
            # `process_document {s3}`: the object ingested as the caller's, then processed.
            "archivist.record_upload",
            "archivist.set_status",
        ],
        "validator": ["archivist.claim_invoice"],
        "gateway": [
            "archivist.record_upload",
            "archivist.delete_document",
            "archivist.stored_file",
            "archivist.stats",
            "archivist.watch_events",
            "archivist.choose_owner",
            "archivist.get_document",
            "archivist.list_documents",
            "archivist.search",
            "archivist.document_counts",
            "research.ask",
            "research.start",
            "research.get",
            "research.cancel",
            "research.conversations",
            "research.conversation",
            # The alarm engine scrapes the gateway's own and every agent's /metrics.
            *METRICS_SCRAPED,
            # The console gathers a document's trace from every agent's GET /traces/{trace_id}.
            *TRACES_READ,
        ],
        "research": ["researcher.research", "critic.critique"],
        "researcher": ["archivist.search", "archivist.get_document"],
        "submitter": [
            "gateway.upload_document",
            "gateway.get_document",
            "gateway.get_file",
            "gateway.list_documents",
            "gateway.events",
            "gateway.research",
            "gateway.conversations",
            "mcp.search_documents",
            "mcp.list_documents",
            "mcp.get_document",
        ],
        # Owns the documents it has the orchestrator ingest from S3 (`{s3: ...}`).
        "lambda-s3-processor": ["orchestrator.process_document"],
        # The console's views, read-only (redrive and asking research need `admin`); its
        # documents view lists every document only with `gateway.read_all_documents`.
        "monitoring": [
            "get_status",
            "gateway.events",
            "metrics",
            "gateway.console_session",
            "gateway.console_documents",
            "gateway.console_dlq",
            "gateway.console_research",
            "gateway.console_security",
            "gateway.console_audit",
            "gateway.console_alarms",
            "traces",  # GET /traces/{trace_id} of every agent
        ],
        "admin": ["*"],
    },
    "deny": {},
    "roles": {},
}


# The template's database line, replaced by `bastion init --database-url`.
DEFAULT_DATABASE_LINE = "  url: sqlite:///bastion.db"

# What a project folder holds besides its config (the template's relative paths).
DATABASE_FILE = "bastion.db"
QUEUE_FILE = "queue.db"
HISTORY = (DATABASE_FILE, QUEUE_FILE, "audit-checkpoints", "objects")
SECRETS_DIR = "secrets"


class InitError(Exception):
    """The directory cannot be initialised; the message says what to do."""


@dataclass
class InitResult:
    directory: Path
    config: Path
    admin_key: str
    # Files of the previous project left as they were (relative to `directory`).
    kept: list[str] = field(default_factory=list)


def existing_project(directory: Path) -> list[str]:
    """What of a project `directory` already holds, as relative names (folders end in /)."""
    names = ("bastion.yaml", "policy.json", SECRETS_DIR, *HISTORY)
    return [
        f"{name}/" if (directory / name).is_dir() else name
        for name in names
        if (directory / name).exists()
    ]


def _refusal(directory: Path, found: list[str]) -> str:
    return (
        f"{directory} already holds a Bastion project ({', '.join(found)}): "
        "--force would overwrite bastion.yaml and policy.json with the defaults (edits to them "
        "are lost) and add a new admin key, keeping the secrets, the database, the queue and "
        "the audit trail; to replace a key use `bastion keys rotate KEY_ID` (for the pepper: "
        "auth.previous_peppers), or choose an empty --dir"
    )


def _usable_directory(directory: Path) -> Path:
    """`directory` resolved and created; InitError when it is a file or cannot be written."""
    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise InitError(f"--dir {directory} is a file: give a folder (it is created if missing)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitError(
            f"cannot create {directory}: {exc.strerror}: choose a folder you can write to"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InitError(f"cannot write to {directory}: choose a folder you can write to")
    return directory


def _random_secret() -> str:
    return secrets.token_hex(32)


# The project's own secrets, each kept when it exists (see the module docstring).
PROJECT_SECRETS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("api-key-pepper", _random_secret),
    ("audit.key", _random_secret),
    ("token-signing.jwks.json", generate_signing_keyset),
)


def _database_line(url: str | None) -> str:
    """The template's `database.url` line for `url` (None: the embedded SQLite file); a URL
    with a password is refused, since the file never holds secrets."""
    if url is None:
        return DEFAULT_DATABASE_LINE
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgresql+psycopg", "sqlite"):
        raise InitError(
            f"--database-url {display_url(url)}: give a postgresql://USER@HOST[:PORT]/DATABASE "
            "(or sqlite:///FILE) URL"
        )
    if parts.password:
        raise InitError(
            f"--database-url {display_url(url)} holds a password, and bastion.yaml never holds "
            "secrets: leave it out of the URL and give it to PostgreSQL's client in PGPASSWORD "
            "or ~/.pgpass"
        )
    return f"  url: {json.dumps(url)}"


def init_project(
    directory: Path, *, force: bool = False, database_url: str | None = None
) -> InitResult:
    """Lay out a project in `directory`; `database_url` (default: the embedded SQLite file)
    is written to bastion.yaml, migrated and given the keys."""
    database_line = _database_line(database_url)
    directory = _usable_directory(directory)
    found = existing_project(directory)
    if found and not force:
        raise InitError(_refusal(directory, found))
    try:
        return _lay_out(directory, database_line)
    except ConfigError as exc:  # the template is valid: an environment override is not
        raise InitError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or directory
        raise InitError(
            f"cannot write {where}: {exc.strerror or exc}: choose a folder you can write to"
        ) from None


def _lay_out(directory: Path, database_line: str) -> InitResult:
    config = directory / "bastion.yaml"
    history = [name for name in existing_project(directory) if name.rstrip("/") in HISTORY]
    database_kept = DATABASE_FILE in history and database_line == DEFAULT_DATABASE_LINE
    config.write_text(
        CONFIG_TEMPLATE.replace(DEFAULT_DATABASE_LINE, database_line, 1), encoding="utf-8"
    )
    (directory / "policy.json").write_text(json.dumps(DEFAULT_POLICY, indent=2) + "\n")
    secrets_dir = directory / SECRETS_DIR
    secrets_dir.mkdir(mode=0o700, exist_ok=True)  # its owner's only, like the files in it
    kept: list[str] = []
    for name, make in PROJECT_SECRETS:
        if (secrets_dir / name).exists():
            kept.append(f"{SECRETS_DIR}/{name}")
        else:
            write_secret_file(secrets_dir / name, make())
    settings = load_settings(config)
    migrate(settings.database_url())
    keys = build_api_key_store(settings)
    admin_key = keys.create("admin", label="created by bastion init")
    for principal in (*SERVICE_PRINCIPALS, *CLIENT_PRINCIPALS):
        path = secrets_dir / f"{principal}.key"
        if database_kept and path.exists():  # its key is in the database that was kept
            kept.append(f"{SECRETS_DIR}/{path.name}")
            continue
        key = keys.create(principal, label="credential created by bastion init")
        write_secret_file(path, key)
    return InitResult(directory, config, admin_key, kept=[*history, *kept])
