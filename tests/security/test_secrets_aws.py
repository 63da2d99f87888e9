"""`secret://aws/...` against a local AWS Secrets Manager (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from bastion.config import AwsSecretsSettings, SecretsSettings
from bastion.security.secrets import Secret, SecretError, resolve
from bastion.testing.ports import free_port
from tests.security.jwt_helpers import FakeClock

REGION = "eu-west-1"
PASSWORD = "db-password-0123456789"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-access-key")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def sm(moto_url: str) -> Any:
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url)


@pytest.fixture
def settings(moto_url: str) -> SecretsSettings:
    return SecretsSettings(aws=AwsSecretsSettings(region=REGION, endpoint_url=moto_url))


def create(sm: Any, name: str, value: str) -> str:
    arn: str = sm.create_secret(Name=name, SecretString=value)["ARN"]
    return arn


def reset_auth(moto_url: str, count: bytes) -> None:
    """How many more requests the fake lets through before it checks credentials."""
    request = urllib.request.Request(
        f"{moto_url}/moto-api/reset-auth",
        data=count,
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).close()


def test_whole_string_and_json_key(sm: Any, settings: SecretsSettings, tmp_path: Path) -> None:
    plain = create(sm, "bastion/plain", PASSWORD)
    doc = create(sm, "bastion/db", json.dumps({"user": "app", "password": PASSWORD}))
    assert resolve(f"secret://aws/{plain}", tmp_path, settings).get() == PASSWORD
    assert resolve(f"secret://aws/{doc}#password", tmp_path, settings).get() == PASSWORD
    assert resolve("secret://aws/bastion/plain", tmp_path, settings).get() == PASSWORD


def test_region_comes_from_the_arn(sm: Any, moto_url: str, tmp_path: Path) -> None:
    arn = create(sm, "bastion/region", PASSWORD)
    no_region = SecretsSettings(aws=AwsSecretsSettings(endpoint_url=moto_url))
    assert resolve(f"secret://aws/{arn}", tmp_path, no_region).get() == PASSWORD
    with pytest.raises(SecretError, match="no AWS region"):
        resolve("secret://aws/bastion/region", tmp_path, no_region)


def test_missing_secret(settings: SecretsSettings, tmp_path: Path) -> None:
    ref = "secret://aws/arn:aws:secretsmanager:eu-west-1:123456789012:secret:nope-AbCdEf"
    with pytest.raises(SecretError, match="no such secret in AWS Secrets Manager") as info:
        resolve(ref, tmp_path, settings)
    assert ref in str(info.value)


def test_missing_key_in_json(sm: Any, settings: SecretsSettings, tmp_path: Path) -> None:
    arn = create(sm, "bastion/nokey", json.dumps({"user": "app", "password": PASSWORD}))
    with pytest.raises(
        SecretError, match=r"has no key 'api_key'; its keys: \['password', 'user'\]"
    ) as info:
        resolve(f"secret://aws/{arn}#api_key", tmp_path, settings)
    assert PASSWORD not in str(info.value)
    plain = create(sm, "bastion/notjson", PASSWORD)
    with pytest.raises(SecretError, match="not a JSON object") as info:
        resolve(f"secret://aws/{plain}#password", tmp_path, settings)
    assert PASSWORD not in str(info.value)


def test_bad_credentials(sm: Any, settings: SecretsSettings, moto_url: str, tmp_path: Path) -> None:
    arn = create(sm, "bastion/auth", PASSWORD)
    # From now on the fake checks signatures against its IAM users: ours is unknown.
    reset_auth(moto_url, b"0")
    try:
        with pytest.raises(SecretError, match="AWS rejected the credentials") as info:
            resolve(f"secret://aws/{arn}", tmp_path, settings)
    finally:
        reset_auth(moto_url, b"inf")
    assert PASSWORD not in str(info.value) and "test-secret-access-key" not in str(info.value)


def test_rotation_is_picked_up_after_the_ttl(
    sm: Any, settings: SecretsSettings, tmp_path: Path
) -> None:
    arn = create(sm, "bastion/rotating", json.dumps({"key": "first-value-000"}))
    clock = FakeClock(0.0)
    ttl = settings.model_copy(update={"ttl_seconds": 60.0})
    handle = Secret(f"secret://aws/{arn}#key", tmp_path, ttl, clock=clock)
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"key": "second-value-00"}))
    assert handle.get().get() == "first-value-000"
    clock.advance(60.0)
    assert handle.get().get() == "second-value-00"


def test_unreachable_at_start_fails_closed(tmp_path: Path) -> None:
    port = free_port()
    down = SecretsSettings(
        aws=AwsSecretsSettings(region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
    )
    with pytest.raises(SecretError, match=f"cannot reach http://127.0.0.1:{port}"):
        Secret("secret://aws/bastion/anything", tmp_path, down)


def test_requests_go_through_the_egress_perimeter(
    sm: Any, moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore sends through the egress client: an endpoint name rebound to the metadata
    address is refused before any byte leaves, and the refusal is logged."""
    import structlog

    import bastion.egress.transport as egress_transport

    create(sm, "bastion/rebound", PASSWORD)
    port = moto_url.rsplit(":", 1)[1]
    named = SecretsSettings(
        aws=AwsSecretsSettings(region=REGION, endpoint_url=f"http://aws-endpoint.internal:{port}")
    )
    monkeypatch.setattr(egress_transport, "system_resolver", lambda host, port: ["127.0.0.1"])
    assert resolve("secret://aws/bastion/rebound", tmp_path, named).get() == PASSWORD
    # Another endpoint name (a new client: clients are cached per endpoint), now answering the
    # metadata address.
    monkeypatch.setattr(egress_transport, "system_resolver", lambda h, p: ["169.254.169.254"])
    rebound = SecretsSettings(
        aws=AwsSecretsSettings(region=REGION, endpoint_url=f"http://aws-other.internal:{port}")
    )
    with structlog.testing.capture_logs() as logs, pytest.raises(SecretError, match="reach"):
        resolve("secret://aws/bastion/rebound", tmp_path, rebound)
    denied = [e for e in logs if e["event"] == "egress.denied"]
    assert denied and {e["principal"] for e in denied} == {"secrets:aws"}
    assert PASSWORD not in str(logs)
