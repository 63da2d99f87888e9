"""`secret://aws/ARN[#KEY]`: AWS Secrets Manager through boto3.

The locator is the secret's ARN (its region is taken from the ARN) or its name (the region
comes from `secrets.aws.region` or boto3's usual configuration). `#KEY` picks one key of a
secret string holding a JSON object. Credentials come from boto3's chain (environment, shared
files, instance role); `secrets.aws.endpoint_url` points at another endpoint (a VPC endpoint,
a local emulator). botocore's requests go through the egress perimeter
(`bastion.egress.bridges`), allowed exactly the endpoint's origin.
"""

from __future__ import annotations

import threading
from typing import Any

from bastion.config import AwsSecretsSettings
from bastion.egress import origin_policy
from bastion.security.secrets.reference import Reference, select_key
from bastion.security.secrets.value import SecretError

__all__ = ["fetch_aws"]

_clients: dict[tuple[str | None, str | None], Any] = {}
_lock = threading.Lock()

_CODES = {
    "ResourceNotFoundException": "no such secret in AWS Secrets Manager: check the ARN/name "
    "and the region",
    "AccessDeniedException": "access denied: grant secretsmanager:GetSecretValue on this secret "
    "to the credentials in use",
    "UnrecognizedClientException": "AWS rejected the credentials: check AWS_ACCESS_KEY_ID / "
    "the instance role",
    "InvalidSignatureException": "AWS rejected the request signature: check the secret access "
    "key and the clock",
    "ExpiredTokenException": "the AWS session token expired: renew the credentials",
    "DecryptionFailure": "AWS cannot decrypt the secret: check the KMS key policy",
    "InvalidRequestException": "AWS refused the request (is the secret scheduled for deletion?)",
    # No parsable error code: the status alone (a proxy, an emulator).
    "403": "AWS rejected the credentials or their permissions (HTTP 403): check "
    "AWS_ACCESS_KEY_ID / the role and secretsmanager:GetSecretValue",
}


def _region(ref: Reference, settings: AwsSecretsSettings) -> str | None:
    parts = ref.locator.split(":")
    if ref.locator.startswith("arn:") and len(parts) > 3 and parts[3]:
        return parts[3]
    return settings.region


def _client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    from bastion.egress.bridges import route_botocore  # heavy imports: only when used

    key = (region, endpoint_url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = boto3.session.Session().client(
                "secretsmanager",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
            )
            # Through the egress perimeter, allowed exactly the endpoint botocore resolved.
            policy = origin_policy(client.meta.endpoint_url)
            route_botocore(client, policy, principal="secrets:aws", timeout=8.0)
            _clients[key] = client
    return client


def fetch_aws(ref: Reference, settings: AwsSecretsSettings) -> str:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    region = _region(ref, settings)
    try:
        reply = _client(region, settings.endpoint_url).get_secret_value(SecretId=ref.locator)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        raise SecretError(f"{ref}: {_CODES.get(code, f'AWS error {code}')}") from None
    except NoRegionError:
        raise SecretError(
            f"{ref}: no AWS region: use a full ARN or set secrets.aws.region (or AWS_REGION)"
        ) from None
    except NoCredentialsError:
        raise SecretError(
            f"{ref}: no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "a profile or an instance role"
        ) from None
    except EndpointConnectionError:
        where = settings.endpoint_url or f"the Secrets Manager endpoint of {region}"
        raise SecretError(
            f"{ref}: cannot reach {where}: check the network and endpoint_url"
        ) from None
    except BotoCoreError as exc:
        raise SecretError(f"{ref}: AWS client error ({type(exc).__name__})") from None
    text = reply.get("SecretString")
    if text is None:
        if ref.key is not None:
            raise SecretError(f"{ref}: a binary secret has no key {ref.key!r}")
        binary = reply.get("SecretBinary")
        try:
            return bytes(binary).decode("utf-8")
        except (TypeError, UnicodeDecodeError):
            raise SecretError(f"{ref}: the binary secret is not UTF-8 text") from None
    return str(text) if ref.key is None else select_key(ref, text)
