"""`bastion init`: lay out a working directory with config, policy, secrets and database.

Writes `DIR/bastion.yaml`, `DIR/policy.json`, `DIR/secrets/*` (mode 0600, referenced from the
config, never inlined), migrates the SQLite database, creates the first `admin` key (printed
once) and each service principal's credential (the agents, the worker and the gateway), stored
as a secret file that the config references.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from bastion.config import load_settings
from bastion.security.secrets import write_secret_file
from bastion.security.stack import build_api_key_store
from bastion.security.token_service import generate_signing_keyset
from bastion.storage.database import migrate

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
  backend: memory
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
    submitter: 100000/minute
audit:
  hmac_key: secret://file/secrets/audit.key
  checkpoint_dir: audit-checkpoints
agents:
  echo:
    url: http://127.0.0.1:8090
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
pipeline:
  objects_dir: objects
  queue_url: sqlite:///queue.db
  worker_concurrency: 8
  worker_api_key: secret://file/secrets/worker.key
  gateway_api_key: secret://file/secrets/gateway.key
  # The key `bastion submit` uploads with (principal `submitter`).
  submit_api_key: secret://file/secrets/submitter.key
  gateway_url: http://127.0.0.1:8080
  max_upload_bytes: 26214400
"""

# Each service principal's own credential, created by `bastion init`.
SERVICE_PRINCIPALS = ("orchestrator", "extractor", "validator", "archivist", "worker", "gateway")
# Client principals with a stored credential: `submitter` is what `bastion submit` uses.
CLIENT_PRINCIPALS = ("submitter",)

# Least privilege: each principal may call exactly what the document flow needs of it.
DEFAULT_POLICY = {
    "allow": {
        "worker": ["orchestrator.process_document"],
        "orchestrator": ["extractor.extract", "validator.validate", "archivist.archive"],
        "validator": ["archivist.claim_invoice"],
        "gateway": [
            "archivist.get_document",
            "archivist.list_documents",
            "archivist.search",
        ],
        "submitter": [
            "gateway.upload_document",
            "gateway.get_document",
            "gateway.get_file",
            "gateway.list_documents",
            "gateway.events",
        ],
        "monitoring": ["get_status", "gateway.events", "metrics"],
        "admin": ["*"],
    },
    "deny": {},
    "roles": {},
}


class InitError(Exception):
    """The directory cannot be initialised; the message says what to do."""


@dataclass
class InitResult:
    directory: Path
    config: Path
    admin_key: str


def init_project(directory: Path, *, force: bool = False) -> InitResult:
    directory = directory.resolve()
    config = directory / "bastion.yaml"
    if config.exists() and not force:
        raise InitError(f"{config} already exists: pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    (directory / "policy.json").write_text(json.dumps(DEFAULT_POLICY, indent=2) + "\n")
    secrets_dir = directory / "secrets"
    write_secret_file(secrets_dir / "api-key-pepper", secrets.token_hex(32))
    write_secret_file(secrets_dir / "audit.key", secrets.token_hex(32))
    write_secret_file(secrets_dir / "token-signing.jwks.json", generate_signing_keyset())
    settings = load_settings(config)
    migrate(settings.database_url())
    keys = build_api_key_store(settings)
    admin_key = keys.create("admin", label="created by bastion init")
    for principal in (*SERVICE_PRINCIPALS, *CLIENT_PRINCIPALS):
        key = keys.create(principal, label="credential created by bastion init")
        write_secret_file(secrets_dir / f"{principal}.key", key)
    return InitResult(directory=directory, config=config, admin_key=admin_key)
