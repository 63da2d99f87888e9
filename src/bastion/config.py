"""Configuration: one `bastion.yaml` plus `BASTION_<SECTION>__<KEY>` environment overrides.

Lookup order for the file: `--config FILE`, then `$BASTION_CONFIG`, then `./bastion.yaml`.
Relative paths inside the file are resolved against the file's own folder. Secrets are never
held here, only references (`secret://env/NAME`, `secret://file/PATH`,
`secret://aws/ARN#KEY`, `secret://vault/PATH#KEY`), resolved by `bastion.security.secrets`
(providers and cache lifetime: the `secrets` section).

An override that names no setting (`BASTION_AUDIT__NOPE`) is ignored with a warning on stderr
(`warn_unknown_env_overrides`, called by `load_settings`); other `BASTION_*` names (no `__`)
are not checked. A bad value in an override is an `EnvOverrideError` naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bastion.egress.policy import EgressPolicy

CONFIG_ENV = "BASTION_CONFIG"
ENV_PREFIX = "BASTION_"
ENV_NESTED_DELIMITER = "__"
DEFAULT_CONFIG_NAME = "bastion.yaml"

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")


class ConfigError(Exception):
    """The configuration is missing or invalid; the message says what to fix."""


class EnvOverrideError(ConfigError):
    """A `BASTION_<SECTION>__<KEY>` environment variable holds a bad value; the message names
    the variable and the setting it overrides, not the YAML file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TLSSettings(_Section):
    certfile: str | None = None
    keyfile: str | None = None
    # mTLS: when set, servers require and verify client certificates against this CA bundle.
    client_ca_file: str | None = None
    # What our own client presents to mTLS servers, and the CA it trusts for server certs.
    client_certfile: str | None = None
    client_keyfile: str | None = None
    ca_file: str | None = None


_REPLICA_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 50
    # Plain HTTP is refused on a non-loopback address unless this is set explicitly.
    allow_insecure_http: bool = False
    shutdown_timeout_seconds: float = 15.0
    # Where an agent keeps its A2A tasks: "database" (the `database.url` tables, shared by
    # replicas and kept across restarts) or "memory" (this process only, lost at restart).
    task_store: Literal["memory", "database"] = "database"
    tls: TLSSettings = TLSSettings()
    # This process among the replicas of one agent or gateway: each replica writes its own audit
    # chain, `<chain>.<replica_id>`. `auto`: the host name and process id (a new chain per
    # start). None: a single replica, whose chain is the agent's name (or `audit.chain`).
    replica_id: str | None = None

    @field_validator("replica_id")
    @classmethod
    def _replica_id_ok(cls, v: str | None) -> str | None:
        if v is not None and not _REPLICA_ID_RE.fullmatch(v):
            raise ValueError(
                f"bad replica_id {v!r}: write `auto` or up to 63 letters, digits, '.', '_' "
                "and '-', starting with a letter or digit (for example the pod name)"
            )
        return v


class DatabaseSettings(_Section):
    url: str = "sqlite:///bastion.db"


class IssuerSettings(_Section):
    name: str
    issuer: str
    jwks_url: str
    audience: str | list[str] | None = None
    client_ids: list[str] | None = None
    token_use: str | None = None

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", v):
            raise ValueError("issuer name must match [a-z0-9][a-z0-9_-]{0,31}")
        return v


class JWTSettings(_Section):
    issuers: list[IssuerSettings] = Field(default_factory=list)
    leeway_seconds: int = 30
    max_token_bytes: int = 8192
    jwks_cache_seconds: int = 600
    jwks_refresh_cooldown_seconds: int = 30
    # Refuse bearer tokens without a `jti` claim (they cannot be revoked). Off: such tokens
    # from external issuers are accepted and cannot be revoked one by one.
    require_jti: bool = False


class TokenServiceSettings(_Section):
    enabled: bool = True
    issuer: str = "bastion"
    audience: str = "bastion"
    ttl_seconds: int = 300
    # Private signing keys (a JWK set), written by `bastion init` with mode 0600.
    signing_keys: str = "secret://file/secrets/token-signing.jwks.json"
    rotate_after_seconds: int = 7 * 24 * 3600


class AuthSettings(_Section):
    # Optional HMAC pepper for API-key hashes; its version is stored with each hash.
    pepper: str | None = None
    pepper_version: int = 1
    # Older peppers by version, so that a new pepper does not invalidate existing keys.
    previous_peppers: dict[int, str] = Field(default_factory=dict)
    api_key_cache_seconds: float = 2.0
    jwt: JWTSettings = JWTSettings()
    token_service: TokenServiceSettings = TokenServiceSettings()


class PolicySettings(_Section):
    file: str = "policy.json"
    reload_check_seconds: float = 1.0


def parse_rate(value: str) -> tuple[int, int]:
    """`"300/minute"` -> `(300, 60)`: the quota and the window in seconds."""
    m = _RATE_RE.match(value)
    if not m:
        raise ValueError(f"bad rate {value!r}: write N/second, N/minute or N/hour")
    count = int(m.group(1))
    if count <= 0:
        raise ValueError(f"bad rate {value!r}: the quota must be positive")
    return count, {"second": 1, "minute": 60, "hour": 3600}[m.group(2)]


class RateLimitSettings(_Section):
    # A set `redis_url` selects Redis unless `backend` says otherwise: replicas that share a
    # Redis share their counts. `backend: memory` with a `redis_url` is warned about.
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    # Put before every key Bastion keeps in that Redis (rate limits, WAF counts, revoked
    # tokens), so that several deployments can share one Redis: e.g. `prod:`.
    redis_key_prefix: str = ""
    # What to do when the shared store is unreachable: deny (HTTP 503) or allow.
    on_backend_error: Literal["deny", "allow"] = "deny"
    default: str = "300/minute"
    principals: dict[str, str] = Field(default_factory=dict)
    # Per-method limits, applied per principal on top of the principal's own limit.
    methods: dict[str, str] = Field(default_factory=dict)

    @field_validator("default")
    @classmethod
    def _default_ok(cls, v: str) -> str:
        parse_rate(v)
        return v

    @model_validator(mode="after")
    def _redis_url_selects_redis(self) -> RateLimitSettings:
        if self.redis_url and "backend" not in self.model_fields_set:
            self.backend = "redis"
        return self

    def ignored_redis_url(self) -> str | None:
        """The warning for a `redis_url` the chosen backend does not use, or None."""
        if self.backend == "memory" and self.redis_url:
            return (
                "rate_limit.redis_url is set but rate_limit.backend is 'memory': each process "
                "counts on its own and the Redis is not used; set rate_limit.backend: redis to "
                "share the limits between replicas, or remove redis_url"
            )
        return None

    @field_validator("principals", "methods")
    @classmethod
    def _rates_ok(cls, v: dict[str, str]) -> dict[str, str]:
        for rate in v.values():
            parse_rate(rate)
        return v


class AuditSettings(_Section):
    hmac_key: str = "secret://file/secrets/audit.key"
    checkpoint_dir: str = "audit-checkpoints"
    # Records are written in batches, off the request path.
    batch_size: int = 500
    flush_interval_seconds: float = 0.2
    buffer_size: int = 20000
    checkpoint_every: int = 1000
    # Chain name; defaults to the agent's name. Replicas of one agent need distinct chains.
    chain: str | None = None
    # `process`: a child process seals and stores records, off the agent's event loop.
    # `in_process`: the agent does it itself (on its loop for SQLite, in a thread otherwise).
    writer: Literal["process", "in_process"] = "process"


class AgentEndpoint(_Section):
    # One URL, or a list of the URLs of the agent's replicas; a URL whose host name resolves to
    # several addresses spreads calls over them too (`bastion.runtime.replicas`).
    url: str | list[str]
    port: int | None = None
    # The agent's own credential for calls it makes to other agents (a secret reference).
    api_key: str | None = None
    # Served at the public edge: the WAF (`waf` section) then sits in front of it.
    public: bool = False
    # Where the agent's own outbound HTTP may go (`bastion.egress`), beyond the peers this file
    # names (which its agent clients may always reach): allow-list, private addresses, schemes.
    # The default allows nothing else.
    egress: EgressPolicy = EgressPolicy()
    # Watched by the gateway: its alarm engine scrapes the agent's `/metrics` and the console
    # gathers its `/traces`. Off for an agent that is configured but not run with the rest
    # (the template's reference `echo` agent, which `bastion up` does not start).
    monitored: bool = True

    @field_validator("url")
    @classmethod
    def _urls_given(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("url is an empty list: give the agent's URL, or its replicas' URLs")
        return v

    def urls(self) -> list[str]:
        """Every configured URL (one per replica), as `base_url` gives the first."""
        return [
            self._with_port(url) for url in ([self.url] if isinstance(self.url, str) else self.url)
        ]

    def base_url(self) -> str:
        """The (first) URL without a trailing slash, with `port` added when it names none: where
        the agent serves when started from this file."""
        return self.urls()[0]

    def _with_port(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.port is not None or self.port is None:
            return url.rstrip("/")
        return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{self.port}")).rstrip("/")


class ClientSettings(_Section):
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 3.0
    max_retries: int = 3
    backoff_base_seconds: float = 0.1
    backoff_max_seconds: float = 5.0
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 10.0
    # With several replicas: how often each one's GET /readyz is probed, and how often a host
    # name is resolved again (also soon after a connection to one of its addresses failed).
    replica_probe_seconds: float = Field(default=5.0, gt=0)
    dns_refresh_seconds: float = Field(default=5.0, gt=0)


# The schemes of `pipeline.queue_url` that `bastion.storage.queue.open_queue` opens.
QUEUE_URL_SCHEMES = (
    "sqlite",
    "redis",
    "rediss",
    "postgresql",
    "postgres",
    "postgresql+psycopg",
    "https",
    "http",
)

# Below it, a calibrated confidence says a field is more likely wrong than right.
DEFAULT_REVIEW_CONFIDENCE = 0.5


class PipelineSettings(_Section):
    """The document pipeline: where bytes and messages live, and its limits.

    AWS (S3, SQS): credentials come from boto3's usual chain (environment, shared files, an
    instance or task role), never from this file.
    """

    # Where document bytes live: a folder (relative to the project) or `s3://bucket/prefix`.
    object_store_url: str = Field(default="objects", min_length=1)
    objects_dir: str = "objects"  # the former name of object_store_url: an alias of it
    s3_endpoint_url: str | None = None  # None: AWS; or MinIO, moto, ... (http(s)://host:port)
    s3_sse: Literal["none", "AES256", "aws:kms"] = "none"  # server-side encryption of objects
    s3_kms_key_id: str | None = None  # with aws:kms: the key (None: the account's S3 key)
    # sqlite:///FILE, redis://[:PASSWORD@]HOST[:PORT][/DB][?prefix=PREFIX] (rediss:// with TLS),
    # postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?options=...], or an SQS queue URL
    # (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME).
    queue_url: str = "sqlite:///queue.db"
    sqs_endpoint_url: str | None = None  # None: the queue URL's own host
    # Where an SQS queue keeps its consumers and receipts (see storage/queue/sqs.py); None:
    # the platform database (database.url), which every worker reaches anyway.
    sqs_ledger_url: str | None = None
    aws_region: str | None = None  # None: from the SQS URL, else boto3's (AWS_REGION, profile)
    visibility_timeout_seconds: float = 120.0
    # A worker's lease on the queue, renewed every third of it: once it runs out (or the worker's
    # process is gone), the messages it held are handed to another worker at once.
    consumer_lease_seconds: float = Field(default=10.0, gt=0)
    max_receive_count: int = 5
    retention_seconds: int = 14 * 24 * 3600
    worker_concurrency: int = 8
    # Backoff before a transiently failed document is tried again: base * 2^(attempt-1), capped.
    retry_backoff_base_seconds: float = 1.0
    retry_backoff_max_seconds: float = 60.0
    # The reconciler (each worker, every reconcile_every_seconds): documents `queued` or
    # `processing` for longer than requeue_after_seconds whose message the queue lost are sent
    # again, or failed when the message is in the dead-letter queue.
    reconcile_every_seconds: float = Field(default=60.0, gt=0)
    requeue_after_seconds: float = Field(default=300.0, gt=0)
    # Credentials of the two pipeline principals that are not agents (secret references).
    worker_api_key: str | None = None
    gateway_api_key: str | None = None
    # The credential `bastion submit` uploads with (a secret reference).
    submit_api_key: str | None = None
    gateway_url: str = "http://127.0.0.1:8080"
    max_upload_bytes: int = 25 * 1024 * 1024
    watch_dir: str | None = None
    watch_patterns: list[str] = Field(default_factory=lambda: ["*.pdf"])
    # Who owns the watched folder's documents (None: the ingesting principal, `gateway:watch`).
    watch_owner: str | None = Field(default=None, min_length=1, max_length=256)
    # S3 event notifications (bucket -> SQS): the worker also consumes this SQS queue's
    # `s3:ObjectCreated:*` records and ingests the objects as its own (`worker`) documents.
    s3_events_queue_url: str | None = None
    # Only objects in these buckets are ingested, from the queue above or by
    # `orchestrator.process_document {s3}` (the AWS Lambda path); empty: none.
    s3_events_buckets: list[str] = Field(default_factory=list)
    s3_events_prefix: str = ""  # only keys starting with this
    s3_events_suffix: str = ""  # only keys ending with this (case-insensitive: `.pdf`)
    rules_file: str | None = None  # None: the shipped default rules
    # A field extracted with a (calibrated) confidence below this sends its document to review
    # (rule `review.low_confidence`) instead of archiving it as valid.
    review_confidence: float = Field(default=DEFAULT_REVIEW_CONFIDENCE, ge=0.0, le=1.0)
    extraction_workers: int = 2
    extraction_timeout_seconds: float = 20.0
    extraction_memory_mb: int = 512
    max_pages: int = 200
    # Pages without a text layer (scans) are read by Tesseract, in these languages as far as
    # they are installed; with OCR off or Tesseract missing they send the document to review.
    ocr: bool = True
    ocr_languages: list[str] = Field(default_factory=lambda: ["deu", "fra", "eng"], min_length=1)
    tesseract_command: str = Field(default="tesseract", min_length=1)

    @field_validator("queue_url")
    @classmethod
    def _queue_backend_known(cls, url: str) -> str:
        scheme, sep, _ = url.partition("://")
        if not sep or scheme not in QUEUE_URL_SCHEMES:
            # Only the scheme is shown: the rest may hold a password.
            what = f"scheme {scheme}://" if sep else "a URL without a scheme"
            raise ValueError(
                f"{what} is not a queue backend: use sqlite:///FILE or "
                "redis://[:PASSWORD@]HOST[:PORT][/DB][?prefix=PREFIX] (rediss:// for TLS) or "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE or an SQS queue URL (https://...)"
            )
        return url

    @model_validator(mode="before")
    @classmethod
    def _objects_dir_is_an_alias(cls, data: Any) -> Any:
        """`objects_dir` (the former name) and `object_store_url` name one setting."""
        if not isinstance(data, dict):
            return data
        old, new = data.get("objects_dir"), data.get("object_store_url")
        if old is not None and new is not None and old != new:
            raise ValueError(
                f"pipeline.objects_dir ({old!r}) and pipeline.object_store_url ({new!r}) name "
                "the same setting: keep only pipeline.object_store_url"
            )
        value = new if new is not None else old
        return data if value is None else {**data, "objects_dir": value, "object_store_url": value}

    @model_validator(mode="after")
    def _s3_events_need_buckets(self) -> PipelineSettings:
        if self.s3_events_queue_url and not self.s3_events_buckets:
            raise ValueError(
                "pipeline.s3_events_queue_url needs pipeline.s3_events_buckets: name the buckets "
                "whose objects may be ingested (objects of any other bucket are refused)"
            )
        return self

    @model_validator(mode="after")
    def _kms_key_needs_kms(self) -> PipelineSettings:
        if self.s3_kms_key_id is not None and self.s3_sse != "aws:kms":
            raise ValueError("pipeline.s3_kms_key_id needs pipeline.s3_sse: aws:kms")
        return self

    @field_validator("ocr_languages")
    @classmethod
    def _tesseract_language_names(cls, names: list[str]) -> list[str]:
        bad = [name for name in names if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", name)]
        if bad:
            raise ValueError(f"not Tesseract language names (like deu, fra, eng): {bad}")
        return names


_SECRET_FROM_ENV_OR_FILE = ("secret://env/", "secret://file/")


class AwsSecretsSettings(_Section):
    """AWS Secrets Manager (`secret://aws/ARN#KEY`). Credentials come from boto3's usual chain
    (environment, shared files, instance role), never from this file."""

    region: str | None = None
    endpoint_url: str | None = None


class VaultSettings(_Section):
    """HashiCorp Vault KV v2 (`secret://vault/PATH#KEY`)."""

    url: str | None = None
    # The Vault token itself: a reference to an environment variable or a file, never a value.
    token: str = "secret://env/VAULT_TOKEN"  # noqa: S105 (a reference, not a token)
    mount: str = "secret"
    timeout_seconds: float = 5.0

    @field_validator("token")
    @classmethod
    def _token_is_reference(cls, v: str) -> str:
        if not v.startswith(_SECRET_FROM_ENV_OR_FILE):
            raise ValueError(
                "the Vault token must be a reference to an environment variable or a file "
                "(secret://env/NAME or secret://file/PATH), never the token itself"
            )
        return v


class SecretsSettings(_Section):
    """How secret references are resolved: cache lifetime, refresh grace, providers."""

    # A resolved value is served this long, then fetched again (a rotation is picked up).
    ttl_seconds: float = Field(default=300.0, gt=0)
    # A failed refresh keeps serving the last good value this long, then fails closed.
    grace_seconds: float = Field(default=3600.0, ge=0)
    aws: AwsSecretsSettings = AwsSecretsSettings()
    vault: VaultSettings = VaultSettings()


WafMode = Literal["BLOCK", "COUNT", "OFF"]
WAF_RATE_WINDOWS = (60, 120, 300, 600)


class WafGroups(_Section):
    """Each WAF rule group's mode: BLOCK refuses a match, COUNT only counts and logs it (to try
    rules on live traffic), OFF skips the group."""

    path_allowlist: WafMode = "BLOCK"
    rate: WafMode = "BLOCK"
    size: WafMode = "BLOCK"
    managed: WafMode = "BLOCK"
    bot: WafMode = "BLOCK"

    @field_validator("*", mode="before")
    @classmethod
    def _mode_ok(cls, v: object) -> object:
        if isinstance(v, str) and v.upper() in ("BLOCK", "COUNT", "OFF"):
            return v.upper()
        if v is False:  # YAML reads a bare `off` as false
            return "OFF"
        raise ValueError(f"bad mode {v!r}: write BLOCK, COUNT or OFF")


class WafLimits(_Section):
    """Request size limits in bytes (HTTP 413 over them). `routes` maps a path prefix to its
    body limit, the longest matching prefix winning; `/message` defaults to
    `server.max_body_bytes` and `/api/documents` to `pipeline.max_upload_bytes` plus room for
    the multipart framing."""

    body_bytes: int = Field(default=64 * 1024, gt=0)
    uri_bytes: int = Field(default=8 * 1024, gt=0)
    query_bytes: int = Field(default=4 * 1024, gt=0)
    header_bytes: int = Field(default=16 * 1024, gt=0)
    routes: dict[str, int] = Field(default_factory=dict)

    @field_validator("routes")
    @classmethod
    def _routes_ok(cls, v: dict[str, int]) -> dict[str, int]:
        for prefix, limit in v.items():
            if not prefix.startswith("/"):
                raise ValueError(f"route {prefix!r}: write a path prefix starting with '/'")
            if limit <= 0:
                raise ValueError(f"route {prefix!r}: the body limit must be a positive number")
        return v


class WafSettings(_Section):
    """The edge WAF in front of the gateway and of agents marked `public`."""

    enabled: bool = True
    groups: WafGroups = WafGroups()
    # Requests per client IP per window (GCRA: a burst of `rate_limit`, then a sliding refill).
    rate_limit: int = Field(default=2000, gt=0)
    rate_window_seconds: int = 300
    # Client IPs remembered by the rate rule; the ones closest to full quota go first. With
    # Redis configured for the rate limits (`rate_limit.redis_url`) the counts are kept there
    # instead (key prefix `bastion:waf-ip:`), shared by every replica.
    rate_max_tracked_ips: int = Field(default=100_000, gt=0)
    # That Redis unreachable: `deny` refuses the request (429, Retry-After: 1), `allow` lets it
    # through uncounted.
    on_backend_error: Literal["deny", "allow"] = "deny"
    # Proxies (addresses or CIDRs) whose X-Forwarded-For is believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Paths served besides the app's own routes (Starlette syntax: "/static/{rest:path}").
    extra_paths: list[str] = Field(default_factory=list)
    limits: WafLimits = WafLimits()

    @field_validator("rate_window_seconds")
    @classmethod
    def _window_ok(cls, v: int) -> int:
        if v not in WAF_RATE_WINDOWS:
            allowed = ", ".join(str(w) for w in WAF_RATE_WINDOWS)
            raise ValueError(f"bad window {v}: write one of {allowed} (seconds)")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_ok(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"bad proxy {entry!r}: write an IP address or a CIDR such as 10.0.0.0/8"
                ) from None
        return v

    @field_validator("extra_paths")
    @classmethod
    def _paths_ok(cls, v: list[str]) -> list[str]:
        for path in v:
            if not path.startswith("/"):
                raise ValueError(f"bad path {path!r}: write a path starting with '/'")
        return v


class EventsSettings(_Section):
    """The gateway's live pipeline events (`WS /ws/events`)."""

    # How often the archivist reads new history rows for a gateway's stream (`watch_events`).
    poll_interval_seconds: float = Field(default=0.2, gt=0)
    # An application-level `{"type": "ping"}` message after this long without an event.
    ping_interval_seconds: float = Field(default=20.0, gt=0)
    # The largest message a client may send (bigger: closed with 1009).
    max_message_bytes: int = Field(default=4096, gt=0)
    # Open event streams per principal (one more: closed with 4029).
    max_subscriptions_per_principal: int = Field(default=8, gt=0)
    # Events buffered per subscriber; a subscriber that falls further behind is closed (4008).
    queue_size: int = Field(default=256, gt=0)


class ConsoleSettings(_Section):
    """The operator's console served by the gateway at `/` (docs/console.md)."""

    # Serve the console (pages, sign-in, static assets). Off: the gateway answers its API only.
    enabled: bool = True
    # Other origins whose pages may open the WebSockets with the session cookie (exact
    # `scheme://host:port`); the gateway's own origin is always allowed.
    allowed_origins: list[str] = Field(default_factory=list)
    # Rows per page in the console's lists.
    page_size: int = Field(default=25, gt=0, le=200)


class LoggingSettings(_Section):
    level: str = "INFO"
    format: Literal["json", "console"] = "json"
    # Personal data (the default guardrail policy's PII types) replaced by {TYPE} in log lines.
    anonymize_pii: bool = True


class GuardrailsSettings(_Section):
    """Settings of `bastion guard scan`."""

    # The key of reversible anonymisation tokens (a policy with `anonymize_with: token`, such
    # as the shipped `strict`): a secret reference to 32, 48 or 64 bytes written as hex.
    token_key: str | None = None


class MetricsSettings(_Section):
    """`GET /metrics` on every agent and the gateway (always authorized as `<agent>.metrics`)."""

    # Queue depth, DLQ size and documents by status are read from the stores at most this often.
    cache_seconds: float = Field(default=5.0, ge=0)


class ObservabilitySettings(_Section):
    """Traces (`bastion.observability.tracing`): spans kept in memory, optionally sent by OTLP."""

    tracing_enabled: bool = True
    # Spans kept in this process's buffer for `GET /traces/{trace_id}` (the oldest go first).
    span_buffer_size: int = Field(default=10000, gt=0)
    # An OTLP/HTTP traces URL (`https://collector:4318/v1/traces`); empty: no export. It must be
    # allowed by the agent's egress policy (`agents.<name>.egress`).
    otlp_endpoint: str = ""
    # Headers sent with each export, a secret reference to `name=value,name2=value2`.
    otlp_headers: str | None = None
    # The `service.name` of exported spans; empty: the agent's name.
    service_name: str = ""
    # Spans waiting for export (the newest are dropped past it), per export, and how often.
    otlp_queue_size: int = Field(default=8192, gt=0)
    otlp_batch_size: int = Field(default=512, gt=0)
    otlp_interval_seconds: float = Field(default=2.0, gt=0)
    otlp_timeout_seconds: float = Field(default=5.0, gt=0)


class AlarmsSettings(_Section):
    """The gateway's alarm engine (`bastion.alarms`): rules evaluated on scraped `/metrics`."""

    enabled: bool = True
    # A YAML file of alarm rules (relative to the config's folder); empty: the shipped rules.
    rules_file: str = ""
    # How often every target's /metrics is scraped and every rule evaluated.
    interval_seconds: float = Field(default=15.0, gt=0)
    # Where firing and resolved alarms are posted (Slack-compatible JSON): each a URL or a
    # secret reference (a webhook URL is a credential). Their hosts must be on `egress`.
    webhooks: list[str] = Field(default_factory=list)
    # Attempts after the first for a webhook that fails (connection error, 429 or 5xx).
    webhook_retries: int = Field(default=3, ge=0, le=10)
    # The wait before the first retry, doubled before each next one (at most 60 seconds).
    webhook_backoff_seconds: float = Field(default=1.0, ge=0)
    # State changes and notification attempts kept for the console.
    history_size: int = Field(default=500, ge=1, le=100_000)
    # Where the webhooks may be posted (`bastion.egress`); the default allows nothing.
    egress: EgressPolicy = EgressPolicy()

    @field_validator("webhooks")
    @classmethod
    def _webhooks_ok(cls, v: list[str]) -> list[str]:
        for index, hook in enumerate(v):
            if not (hook.startswith("secret://") or re.match(r"^https?://[^/?#]+", hook)):
                raise ValueError(
                    f"webhooks[{index}] must be an http(s) URL or a secret reference "
                    "(secret://env/NAME, secret://file/PATH, ...)"
                )
        return v


class TavilySettings(_Section):
    """The Tavily web search API, the research agents' `tavily` search provider."""

    base_url: str = "https://api.tavily.com"
    # The API key: a secret reference (secret://env/TAVILY_API_KEY, ...), never the key itself.
    # None: the provider cannot be built (it says so).
    api_key_ref: str | None = None
    # A search that has not answered in this long fails (and counts against the breaker).
    timeout_seconds: float = Field(default=10.0, gt=0)
    # The most results one search asks for (Tavily allows 1 to 20).
    max_results: int = Field(default=5, ge=1, le=20)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/?#]+", v):
            raise ValueError(f"base_url must be an http(s) URL with a host, got {v!r}")
        return v.rstrip("/")

    @field_validator("api_key_ref")
    @classmethod
    def _key_is_reference(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("secret://"):
            raise ValueError(
                "api_key_ref must be a secret reference (secret://env/NAME, secret://file/PATH,"
                " secret://aws/ARN#KEY or secret://vault/PATH#KEY), never the key itself"
            )
        return v


ResearchProvider = Literal["corpus", "archive", "tavily"]


class ResearchSettings(_Section):
    """The deep research system: its sources, its fan-out, its critic and its model.

    `providers` None means the default: `corpus` when `corpus` is set, `archive` always (the
    document pipeline's archive, read for the asking principal), `tavily` only when it has a
    key. `model` is a model endpoint (`bastion.llm.ModelConfig`'s fields); without one every
    step runs on the deterministic offline path.
    """

    # A folder of .txt/.md/.pdf files, or a .json/.jsonl file of {id?, title, text, url?}
    # objects (relative paths are to the config file's folder). None: no local corpus.
    corpus: str | None = None
    providers: list[ResearchProvider] | None = None
    # Sub-questions researched at once by one researcher service (asyncio tasks).
    researchers: int = Field(default=4, ge=1, le=32)
    # Critique rounds: REFINE sends the named gaps back to the planner this many times at most.
    max_rounds: int = Field(default=2, ge=1, le=5)
    # A claim supported only by sources below this credibility is flagged by the critic.
    min_credibility: float = Field(default=0.5, ge=0.0, le=1.0)
    # The credibility tier file (YAML); None: the shipped tiers.
    credibility: str | None = None
    # Passages one researcher keeps per sub-question.
    passages_per_question: int = Field(default=10, ge=1, le=50)
    # A run that has not finished in this long is failed (and its researchers cancelled).
    run_timeout_seconds: float = Field(default=120.0, gt=0)
    model: dict[str, Any] | None = None
    tavily: TavilySettings = TavilySettings()

    def enabled_providers(self) -> list[ResearchProvider]:
        """The providers a run searches, in order."""
        if self.providers is not None:
            return list(dict.fromkeys(self.providers))
        chosen: list[ResearchProvider] = []
        if self.corpus:
            chosen.append("corpus")
        chosen.append("archive")
        if self.tavily.api_key_ref:
            chosen.append("tavily")
        return chosen


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
    )

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    policy: PolicySettings = PolicySettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    audit: AuditSettings = AuditSettings()
    agents: dict[str, AgentEndpoint] = Field(default_factory=dict)
    client: ClientSettings = ClientSettings()
    pipeline: PipelineSettings = PipelineSettings()
    logging: LoggingSettings = LoggingSettings()
    guardrails: GuardrailsSettings = GuardrailsSettings()
    metrics: MetricsSettings = MetricsSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    events: EventsSettings = EventsSettings()
    secrets: SecretsSettings = SecretsSettings()
    waf: WafSettings = WafSettings()
    research: ResearchSettings = ResearchSettings()
    console: ConsoleSettings = ConsoleSettings()
    alarms: AlarmsSettings = AlarmsSettings()

    # Folder that relative paths are resolved against (the config file's folder).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment overrides beat the file (passed as init kwargs).
        return (_KnownEnvOverrides(settings_cls, env_settings), init_settings)

    def path(self, value: str | os.PathLike[str]) -> Path:
        """Resolve a configured path against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against `base_dir`."""
        return self.resolve_sqlite_url(self.database.url)

    def sqs_ledger_url(self) -> str:
        """The database of an SQS queue's ledger: `pipeline.sqs_ledger_url`, else the platform
        database (a relative SQLite path resolved against `base_dir`)."""
        return self.resolve_sqlite_url(self.pipeline.sqs_ledger_url or self.database.url)

    def resolve_sqlite_url(self, url: str) -> str:
        """`url` with a relative SQLite path resolved against `base_dir`."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix) :]))
        return url


def _override_path(name: str) -> tuple[str, ...]:
    """`BASTION_AUTH__JWT__LEEWAY_SECONDS` -> `("auth", "jwt", "leeway_seconds")`."""
    return tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER))


def _is_override(name: str) -> bool:
    """A `BASTION_<SECTION>__<KEY>` name (other `BASTION_*` names are not overrides)."""
    return name.upper().startswith(ENV_PREFIX) and ENV_NESTED_DELIMITER in name[len(ENV_PREFIX) :]


def _names_a_setting(annotation: Any, parts: Sequence[str]) -> bool:
    """Whether `parts` lead from a value of type `annotation` to one of its settings."""
    if not parts:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(parts[0])
        return field is not None and _names_a_setting(field.annotation, parts[1:])
    origin = get_origin(annotation)
    if origin is dict:  # any key (an agent's name, a pepper version), then the value's settings
        return bool(parts[0]) and _names_a_setting(get_args(annotation)[1], parts[1:])
    if origin is Union or origin is types.UnionType:
        return any(_names_a_setting(arg, parts) for arg in get_args(annotation))
    return False  # a plain value has no settings under it


def unknown_env_overrides(environ: Mapping[str, str] | None = None) -> list[str]:
    """The `BASTION_<SECTION>__<KEY>` variables that name no setting, sorted."""
    names = os.environ if environ is None else environ
    return sorted(
        name
        for name in names
        if _is_override(name) and not _names_a_setting(Settings, _override_path(name))
    )


def warn_unknown_env_overrides() -> None:
    """One warning line on stderr per override that names no setting (it is ignored)."""
    for name in unknown_env_overrides():
        key = ".".join(_override_path(name))
        sys.stderr.write(
            f"warning: environment variable {name} names no setting ({key}); it is ignored\n"
        )


def _drop(tree: dict[str, Any], parts: Sequence[str]) -> None:
    """Remove `parts` from nested dicts, and the dicts it leaves empty."""
    trail: list[tuple[dict[str, Any], str]] = []
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return
        trail.append((node, part))
        node = child
    node.pop(parts[-1], None)
    while trail and not node:
        node, key = trail.pop()
        node.pop(key)


class _KnownEnvOverrides(PydanticBaseSettingsSource):
    """The environment source, without the overrides that name no setting (warned about by
    `warn_unknown_env_overrides`) so that they cannot fail validation."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._env.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self._env()
        for name in unknown_env_overrides():
            _drop(values, _override_path(name))
        return values


def _env_variable_for(loc: Sequence[str | int]) -> str | None:
    """The `BASTION_*` variable that set the value at `loc`, if one did."""
    by_path = {_override_path(n): n for n in os.environ if n.upper().startswith(ENV_PREFIX)}
    parts = tuple(str(p).lower() for p in loc)
    for end in range(len(parts), 0, -1):
        if parts[:end] in by_path:
            return by_path[parts[:end]]
    return None


def _invalid(source: Path | None, exc: ValidationError) -> ConfigError:
    """The error to raise: the variables at fault when an override is bad, else the file."""
    from_env: list[str] = []
    from_file: list[str] = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        variable = _env_variable_for(err["loc"])
        if variable is None:
            from_file.append(f"{key}: {err['msg']}")
        else:
            from_env.append(f"environment variable {variable} ({key}): {err['msg']}")
    if from_env:
        return EnvOverrideError("; ".join(from_env) + "; fix or unset it")
    return ConfigError(f"{source or 'configuration'}: " + "; ".join(from_file))


def _bad_env_json(exc: SettingsError) -> EnvOverrideError:
    match = re.search(r'field "([^"]+)"', str(exc))
    section = match.group(1) if match else ""
    variables = sorted(
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX) and _override_path(name)[:1] == (section,)
    )
    named = ", ".join(variables) or f"{ENV_PREFIX}{section.upper()}*"
    return EnvOverrideError(
        f"environment variable {named}: not a valid value for `{section}` "
        "(a whole section or list is written as JSON); fix or unset it"
    )


def _build(raw: dict[str, Any], source: Path | None) -> Settings:
    try:
        if source is None:
            return Settings(**raw)
        return Settings(**raw, base_dir=source.resolve().parent)
    except ValidationError as exc:
        raise _invalid(source, exc) from None
    except SettingsError as exc:
        raise _bad_env_json(exc) from None


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use, by lookup order, or None when there is none."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        return p
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"${CONFIG_ENV} points to {p}, which does not exist")
        return p
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def load_settings(
    explicit: str | os.PathLike[str] | None = None, *, required: bool = True
) -> Settings:
    """Load settings by lookup order. Errors name the file (or the environment variable) and
    the problem; overrides that name no setting are warned about on stderr."""
    path = find_config(explicit)
    if path is None:
        if required:
            raise ConfigError(
                "no bastion.yaml found: pass --config FILE, set BASTION_CONFIG, "
                "or create one with `bastion init --dir DIR`"
            )
        warn_unknown_env_overrides()
        return _build({}, None)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    warn_unknown_env_overrides()
    return _build(raw, path)
