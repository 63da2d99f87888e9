"""`secret://vault/PATH#KEY`: HashiCorp Vault's KV version 2 engine through hvac.

The secret at `PATH` under the mount `secrets.vault.mount` is read (its latest version) and
`KEY` picked from its data. The Vault address is `secrets.vault.url` (else `$VAULT_ADDR`); the
token is itself a reference to an environment variable or a file (`secrets.vault.token`,
default `secret://env/VAULT_TOKEN`). hvac's requests go through the egress perimeter
(`bastion.egress.bridges`), allowed exactly the configured address's origin, with no redirect
(the token would travel with it).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from bastion.config import VaultSettings
from bastion.egress import origin_policy
from bastion.security.secrets.reference import Reference, select_key
from bastion.security.secrets.value import SecretError, SecretValue

__all__ = ["fetch_vault"]

PRINCIPAL = "secrets:vault"  # names the caller in egress log lines


def fetch_vault(ref: Reference, settings: VaultSettings, token: Callable[[], SecretValue]) -> str:
    import hvac
    import requests
    from hvac import exceptions as vault_errors

    from bastion.egress.bridges import requests_session  # heavy imports: only when used

    if ref.key is None:
        raise SecretError(f"{ref}: a Vault reference needs the key to read: write {ref}#KEY")
    url = settings.url or os.environ.get("VAULT_ADDR")
    if not url:
        raise SecretError(f"{ref}: no Vault address: set secrets.vault.url (or VAULT_ADDR)")
    # No redirects: the token travels in X-Vault-Token, which a redirect would hand to
    # whatever host the answer names.
    try:
        policy = origin_policy(url)
    except ValueError:
        raise SecretError(f"{ref}: the Vault address {url!r} is not an http(s) URL") from None
    session = requests_session(policy, principal=PRINCIPAL, timeout=settings.timeout_seconds)
    client = hvac.Client(
        url=url,
        token=token().get(),
        timeout=settings.timeout_seconds,
        allow_redirects=False,
        session=session,
    )
    try:
        reply = client.secrets.kv.v2.read_secret_version(
            path=ref.locator, mount_point=settings.mount, raise_on_deleted_version=True
        )
    except (vault_errors.Forbidden, vault_errors.Unauthorized):
        raise SecretError(
            f"{ref}: Vault refused the token ({settings.token}): renew it or grant it read on "
            f"{settings.mount}/data/{ref.locator}"
        ) from None
    except vault_errors.InvalidPath:
        raise SecretError(
            f"{ref}: no secret at {settings.mount}/data/{ref.locator} in Vault: check the path "
            "and secrets.vault.mount"
        ) from None
    except vault_errors.UnexpectedError:
        raise SecretError(
            f"{ref}: Vault at {url} answered with a redirect or an unexpected status: point "
            "secrets.vault.url at the Vault server itself"
        ) from None
    except vault_errors.VaultError as exc:
        raise SecretError(f"{ref}: Vault error ({type(exc).__name__})") from None
    except requests.RequestException:
        raise SecretError(f"{ref}: cannot reach Vault at {url}: check secrets.vault.url") from None
    finally:
        client.adapter.close()
        session.close()
    if not isinstance(reply, dict):  # hvac hands back a redirect (3xx) as a bare response
        status = getattr(reply, "status_code", "?")
        raise SecretError(
            f"{ref}: Vault at {url} answered HTTP {status}, a redirect or an unexpected answer: "
            "point secrets.vault.url at the Vault server itself"
        )
    data = reply.get("data", {}).get("data")
    return select_key(ref, data if isinstance(data, dict) else "")
