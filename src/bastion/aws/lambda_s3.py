"""The AWS Lambda that processes S3 events: `lambda_handler(event, context)`.

Triggered by an SQS queue that receives a bucket's event notifications (S3 -> SQS, or
S3 -> SNS -> SQS), with `ReportBatchItemFailures` on the event source mapping. For each SQS
record it reads the created objects (`s3_objects`: URL-decoded keys, `s3:TestEvent` ignored,
the prefix and suffix filters) and calls `orchestrator.process_document {s3: {bucket, key,
version_id?, etag?, size?}}` under its own principal, `lambda-s3-processor`, with a new
correlation ID per object. The orchestrator ingests the object as this principal's document
and processes it at once.

The answer is `{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`, naming the records
that failed for now (the orchestrator unreachable, an HTTP 5xx, rate limited, a refused
credential): SQS delivers them again, and its redrive policy moves a record that keeps failing
to the queue's dead-letter queue. A document refused for good (DocumentRejected: not a PDF, too
large, a bucket not allowed, the extractor's reason; DocumentNotFound; invalid params) is not
retried: the orchestrator has recorded it (`failed` with its reason, or an audited refusal),
and it is logged here. A record that is not an S3 notification is logged and dropped.

Configuration, from the environment (a Lambda has no project folder):

- `BASTION_ORCHESTRATOR_URL` (required): the orchestrator's base URL;
- `BASTION_API_KEY_REF` (required): a secret reference to `lambda-s3-processor`'s API key, on
  AWS `secret://aws/ARN#KEY` (Secrets Manager; the function's role needs
  `secretsmanager:GetSecretValue` on it); resolved once per container and again after
  `secrets.ttl_seconds` (300 s), so a rotation is picked up;
- `BASTION_S3_EVENTS_PREFIX` / `BASTION_S3_EVENTS_SUFFIX` (optional): key filters;
- `BASTION_TIMEOUT_SECONDS` (optional, default 60): each call's timeout, to stay below the
  function's own timeout;
- `BASTION_SECRETS_ENDPOINT_URL` (optional): another Secrets Manager endpoint (a VPC endpoint).

Missing configuration or an unreadable key raises: the whole batch is then delivered again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from bastion.config import AwsSecretsSettings, ClientSettings, SecretsSettings
from bastion.core.context import correlation_id_var, new_correlation_id
from bastion.pipeline import NotAnS3Event, S3Ref, s3_objects
from bastion.protocol.errors import DOCUMENT_NOT_FOUND, DOCUMENT_REJECTED, INVALID_PARAMS
from bastion.runtime import AgentClient, AgentUnreachable, BreakerOpen, RpcCallError
from bastion.security import Secret

log = structlog.get_logger("bastion.aws.lambda")

PRINCIPAL = "lambda-s3-processor"
# The orchestrator's answers about the document itself: retrying cannot change them.
_FOR_GOOD = frozenset({DOCUMENT_REJECTED, DOCUMENT_NOT_FOUND, INVALID_PARAMS})
_keys: dict[tuple[str, str | None], Secret] = {}


class LambdaConfigError(RuntimeError):
    """The function's environment is incomplete; the message names the variable."""


@dataclass(frozen=True, slots=True)
class LambdaConfig:
    orchestrator_url: str
    api_key_ref: str
    prefix: str = ""
    suffix: str = ""
    timeout_seconds: float = 60.0
    secrets_endpoint_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LambdaConfig:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise LambdaConfigError(f"{name} is not set: see bastion.aws.lambda_s3")
            return value

        ref = required("BASTION_API_KEY_REF")
        if not ref.startswith("secret://"):
            raise LambdaConfigError(
                "BASTION_API_KEY_REF must be a secret reference (secret://aws/ARN#KEY), "
                "never the key itself"
            )
        try:
            timeout = float(env.get("BASTION_TIMEOUT_SECONDS") or 60)
        except ValueError:
            raise LambdaConfigError("BASTION_TIMEOUT_SECONDS must be a number of seconds") from None
        return cls(
            orchestrator_url=required("BASTION_ORCHESTRATOR_URL"),
            api_key_ref=ref,
            prefix=env.get("BASTION_S3_EVENTS_PREFIX", ""),
            suffix=env.get("BASTION_S3_EVENTS_SUFFIX", ""),
            timeout_seconds=timeout,
            secrets_endpoint_url=env.get("BASTION_SECRETS_ENDPOINT_URL") or None,
        )


def api_key(config: LambdaConfig) -> Secret:
    """The principal's key, a handle kept for the container's life (it refreshes itself)."""
    cache_key = (config.api_key_ref, config.secrets_endpoint_url)
    if cache_key not in _keys:
        settings = SecretsSettings(aws=AwsSecretsSettings(endpoint_url=config.secrets_endpoint_url))
        _keys[cache_key] = Secret(config.api_key_ref, Path.cwd(), settings)
    return _keys[cache_key]


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: process an SQS batch of S3 notifications."""
    config = LambdaConfig.from_env()
    key = api_key(config).get()
    return asyncio.run(handle_batch(event, config, key))


async def handle_batch(
    event: dict[str, Any],
    config: LambdaConfig,
    key: Any,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """`{"batchItemFailures": [...]}` for the records of `event` that should be tried again."""
    records = [r for r in event.get("Records") or [] if isinstance(r, dict)]
    client_settings = ClientSettings(timeout_seconds=config.timeout_seconds)
    async with AgentClient(
        config.orchestrator_url,
        api_key=key,
        settings=client_settings,
        principal=PRINCIPAL,
        transport=transport,
    ) as client:
        done = await asyncio.gather(*(handle_record(client, r, config) for r in records))
    failures = [
        {"itemIdentifier": str(record.get("messageId"))}
        for record, ok in zip(records, done, strict=True)
        if not ok
    ]
    return {"batchItemFailures": failures}


async def handle_record(client: AgentClient, record: dict[str, Any], config: LambdaConfig) -> bool:
    """Process the objects one SQS record names; False when it should be tried again."""
    message_id = record.get("messageId")
    try:
        objects = s3_objects(record.get("body", ""), prefix=config.prefix, suffix=config.suffix)
    except NotAnS3Event as exc:
        log.warning("not an S3 event; dropped", message_id=message_id, problem=str(exc))
        return True
    for obj in objects:
        fields = {"message_id": message_id, "bucket": obj.bucket, "key": obj.key}
        token = correlation_id_var.set(new_correlation_id())
        try:
            ref = S3Ref.of(obj).model_dump(exclude_none=True)
            result = await client.call("process_document", {"s3": ref})
        except ValueError as exc:  # a reference S3 never sends: nothing to retry
            log.warning("S3 object refused", reason="bad_message", problem=str(exc), **fields)
            continue
        except RpcCallError as error:
            if error.code in _FOR_GOOD:
                data = error.data if isinstance(error.data, dict) else {}
                log.warning("S3 object refused", reason=data.get("reason"), **fields)
                continue
            log.warning("S3 object failed; will retry", code=error.code, **fields)
            return False
        except (AgentUnreachable, BreakerOpen) as error:
            log.warning("orchestrator unreachable; will retry", reason=str(error), **fields)
            return False
        except Exception:  # anything unforeseen: tried again, never dropped
            log.exception("S3 object failed; will retry", **fields)
            return False
        finally:
            correlation_id_var.reset(token)
        log.info("S3 object processed", result=result, **fields)
    return True
