"""Delegation, not impersonation, over real HTTP: a researcher reads the archive only on a
user's behalf and sees only what that user may open; every forged, lifted, expired or revoked
delegation is refused and audited, and the acting chain grows by one actor per hop."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.config import TokenServiceSettings
from bastion.core.context import CallContext, Identity
from bastion.pipeline.model import ExtractionResult, ValidationResult
from bastion.protocol.endpoints import DELEGATION_HEADER
from bastion.protocol.errors import FORBIDDEN, UNAUTHENTICATED
from bastion.runtime import AgentClient, AgentDefinition, MethodRegistry, RpcCallError
from bastion.runtime.agent import AgentApp
from bastion.security import DelegationError, SecurityStack, build_security
from bastion.security.delegation import REUSE_FRACTION, Delegations
from bastion.testing import serve_in_thread
from tests.web.conftest import Project, make_project, record_new_upload, rpc, serve_archivist

READERS = ("alice", "bob", "researcher", "middle")


def _grant(project: Project) -> None:
    """The researcher may search and read the archive; `middle` relays a search to it."""
    path = project.dir / "policy.json"
    policy = json.loads(path.read_text())
    policy["allow"]["researcher"] = ["archivist.search", "archivist.get_document"]
    policy["allow"]["middle"] = ["archivist.search"]
    policy["allow"]["gateway"].append("middle.relay_search")
    path.write_text(json.dumps(policy))


class World:
    def __init__(self, project: Project, archivist_url: str, gateway: SecurityStack) -> None:
        self.project = project
        self.archivist_url = archivist_url
        self.gateway = gateway  # the security stack a gateway would mint delegations with
        self.docs = {
            who: record_new_upload(project.repo, principal=who) for who in ("alice", "bob")
        }
        for doc in self.docs.values():
            project.repo.archive(
                doc,
                ExtractionResult(document_type="invoice", confidence=0.9),
                ValidationResult(outcome="valid"),
                correlation_id="deleg-setup",
                principal="orchestrator",
                text_excerpt="invoice for freight",
            )

    async def identity(self, principal: str) -> Identity:
        identity, reason = await self.gateway.api_keys.verify(self.project.keys[principal])
        assert identity is not None, reason
        return identity

    async def delegation(self, subject: str, actors: tuple[str, ...], **kw: Any) -> str:
        identity = await self.identity(subject)
        assert identity.api_key_id is not None
        return self.gateway.delegations.mint(
            subject,
            key_id=identity.api_key_id,
            actors=actors,
            expires_at=kw.get("expires_at", time.time() + 300),
        )

    def search(self, principal: str, delegation: str | None) -> httpx.Response:
        headers = {DELEGATION_HEADER: delegation} if delegation is not None else {}
        headers["X-Correlation-ID"] = f"deleg-{time.monotonic_ns()}"
        params = {"query": "invoice", "owner": None, "limit": 50}
        return rpc(self.archivist_url, "search", params, self.project.keys[principal], headers)

    def found(self, response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        body = response.json()
        assert "result" in body, body
        return {r["id"] for r in body["result"]["results"]}

    def audit_detail(self, correlation_id: str, at_least: int = 1) -> list[Any]:
        """The call's audit rows, waiting until `at_least` of them (each hop's writer flushes
        on its own)."""
        rows = self.project.audit_records(
            lambda r: r.correlation_id == correlation_id, at_least=at_least
        )
        return [(r.agent, r.principal, r.outcome, r.detail) for r in rows]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("delegation")
    url = f"sqlite:///{tmp / 'bastion.db'}"
    from bastion.security.stack import build_api_key_store
    from bastion.storage.database import migrate

    migrate(url)
    project = make_project(tmp, url)
    store = build_api_key_store(project.settings)
    for who in READERS:
        project.keys[who] = store.create(who, label="test")
    _grant(project)
    gateway = build_security("gateway", project.settings)
    with serve_archivist(project) as srv:
        yield World(project, srv.url, gateway)


def test_a_reader_without_a_delegation_is_refused(world: World) -> None:
    r = world.search("researcher", None)
    error = r.json()["error"]
    assert error["code"] == FORBIDDEN
    assert "delegation" in error["message"]


async def test_a_delegated_read_sees_exactly_what_its_subject_may_open(world: World) -> None:
    as_alice = world.search("researcher", await world.delegation("alice", ("researcher",)))
    as_bob = world.search("researcher", await world.delegation("bob", ("researcher",)))
    assert world.docs["alice"] in world.found(as_alice)
    assert world.docs["bob"] not in world.found(as_alice)
    assert world.found(as_bob) >= {world.docs["bob"]}
    assert world.docs["alice"] not in world.found(as_bob)
    # The owner named in the params changes nothing: the delegation decides.
    everyone = await world.delegation("admin", ("researcher",))  # admin reads all (`*`)
    assert world.found(world.search("researcher", everyone)) >= set(world.docs.values())


async def test_a_delegated_get_of_another_subject_s_document_is_not_found(world: World) -> None:
    token = await world.delegation("bob", ("researcher",))
    params = {"document_id": world.docs["alice"], "owner": None}
    r = rpc(
        world.archivist_url,
        "get_document",
        params,
        world.project.keys["researcher"],
        {DELEGATION_HEADER: token},
    )
    assert r.json()["error"]["data"]["reason"] == "not_owner"


async def test_the_audit_record_names_the_subject_and_the_chain(world: World) -> None:
    token = await world.delegation("alice", ("researcher", "research", "gateway"))
    cid = "deleg-audit-0001"
    params = {"query": "invoice", "owner": None}
    headers = {DELEGATION_HEADER: token, "X-Correlation-ID": cid}
    assert rpc(world.archivist_url, "search", params, world.project.keys["researcher"], headers)
    rows = world.audit_detail(cid)
    assert rows == [
        ("archivist", "researcher", "ok", "for alice via researcher < research < gateway")
    ]


def _refused(world: World, principal: str, token: str) -> str:
    """Refusals are 401 Unauthenticated, audited with the reason."""
    cid = f"deleg-refused-{time.monotonic_ns()}"
    params = {"query": "invoice", "owner": None}
    headers = {DELEGATION_HEADER: token, "X-Correlation-ID": cid}
    r = rpc(world.archivist_url, "search", params, world.project.keys[principal], headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == UNAUTHENTICATED
    (row,) = world.audit_detail(cid)
    assert row[2] == "denied:authenticate"
    detail: str = row[3]
    assert token not in detail
    return detail


async def test_a_delegation_lifted_by_another_agent_is_refused(world: World) -> None:
    token = await world.delegation("alice", ("gateway",))  # made for the gateway's call
    assert "its actor is gateway, the caller is researcher" in _refused(world, "researcher", token)


async def test_a_forged_delegation_is_refused(world: World) -> None:
    genuine = await world.delegation("alice", ("researcher",))
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    claims["sub"] = "bob"
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    assert "bad signature" in _refused(world, "researcher", forged)
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert "no signature" in _refused(world, "researcher", unsigned)
    garbage = "not-a-token"
    assert "malformed" in _refused(world, "researcher", garbage)


async def test_an_expired_delegation_is_refused(world: World) -> None:
    identity = await world.identity("alice")
    with pytest.raises(DelegationError, match="expired"):
        world.gateway.delegations.mint(
            "alice", key_id=str(identity.api_key_id), actors=("researcher",), expires_at=1.0
        )
    now = time.time()
    world.gateway.delegations._clock = lambda: now - 3600  # minted an hour ago
    try:
        old = await world.delegation("alice", ("researcher",), expires_at=now + 86400)
    finally:
        world.gateway.delegations._clock = time.time
    assert "expired" in _refused(world, "researcher", old)


async def test_a_delegation_is_not_an_access_token_nor_the_reverse(world: World) -> None:
    token = await world.delegation("alice", ("researcher",))
    r = httpx.post(
        world.archivist_url + "/message",
        json={"jsonrpc": "2.0", "id": 1, "method": "search", "params": {"query": "x"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401
    identity = await world.identity("alice")
    access, _ = world.gateway.token_service.issue(
        "alice", key_id=str(identity.api_key_id), not_after=None
    )
    assert "InvalidAudienceError" in _refused(world, "researcher", access)


async def test_revoking_the_subject_s_key_ends_its_delegations(world: World) -> None:
    store = world.gateway.api_keys
    carol_key = store.create("carol", label="test")
    carol, _ = await store.verify(carol_key)
    assert carol is not None and carol.api_key_id is not None
    token = world.gateway.delegations.mint(
        "carol", key_id=carol.api_key_id, actors=("researcher",), expires_at=time.time() + 300
    )
    assert world.search("researcher", token).status_code == 200
    store.revoke(carol.api_key_id)
    assert "revoked" in _refused(world, "researcher", token)


async def test_a_principal_without_a_key_gets_no_delegation(world: World) -> None:
    outsider = Identity(principal="idp:someone", auth_method="jwt", expires_at=time.time() + 60)
    with pytest.raises(DelegationError, match="needs one"), world.gateway.acting_for(outsider):
        pass


# -- the chain grows by one actor per hop -----------------------------------------------------


def _middle(world: World) -> AgentDefinition:
    """An agent that relays a search to the archivist with its own key."""
    client = AgentClient(
        world.archivist_url, api_key=world.project.keys["middle"], principal="middle"
    )
    registry = MethodRegistry()

    @registry.method("relay_search")
    async def relay_search(ctx: CallContext) -> dict[str, Any]:
        try:
            found = await client.call("search", {"query": "invoice", "owner": None})
        except RpcCallError as refused:
            return {"refused": refused.code}
        return {"for": ctx.delegation.subject if ctx.delegation else None, **found}

    return AgentDefinition(
        name="middle", description="relays", registry=registry, on_shutdown=[client.aclose]
    )


async def test_each_hop_passes_the_delegation_on_with_itself_added(world: World) -> None:
    app = AgentApp(_middle(world), world.project.settings)
    alice = await world.identity("alice")
    gateway_key = world.project.keys["gateway"]
    with serve_in_thread(app) as middle:
        client = AgentClient(middle.url, api_key=gateway_key, principal="gateway")
        try:
            with world.gateway.acting_for(alice):
                result = await client.call("relay_search")
            cid = "deleg-chain-0001"
            from bastion.core.context import correlation_id_var

            reset = correlation_id_var.set(cid)
            try:
                with world.gateway.acting_for(alice):
                    await client.call("relay_search")
            finally:
                correlation_id_var.reset(reset)
            # Outside the block, the gateway's calls carry no delegation, nor do the relay's.
            assert (await client.call("relay_search"))["refused"] == FORBIDDEN
        finally:
            await client.aclose()
    assert result["for"] == "alice"
    found = {r["id"] for r in result["results"]}
    assert world.docs["alice"] in found and world.docs["bob"] not in found
    rows = world.audit_detail(cid, at_least=2)
    assert ("middle", "gateway", "ok", "for alice via gateway") in rows
    assert ("archivist", "middle", "ok", "for alice via middle < gateway") in rows


# -- a token passed on is reused, never checked less ---------------------------------------------


class _Keys:
    """Signing keys as `Delegations` sees them; `rotate` hands out a new key set."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}

    def public_jwks(self) -> dict[str, Any]:
        return self.jwks

    def sign(self, claims: dict[str, Any]) -> str:
        return json.dumps(claims, sort_keys=True)  # unique per token: its jti

    def rotate(self) -> None:
        self.jwks = {"keys": []}


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _never_refused(_key_id: str, _principal: str) -> str | None:
    return None


def _reusing() -> tuple[Delegations, _Keys, _Clock]:
    keys, clock = _Keys(), _Clock()
    settings = TokenServiceSettings(ttl_seconds=300)
    return Delegations(settings, keys, _never_refused, clock=clock), keys, clock  # type: ignore[arg-type]


def test_a_token_is_reused_for_the_same_subject_key_and_chain_only() -> None:
    delegations, _, clock = _reusing()
    far = clock.now + 3600

    def token(subject: str = "alice", key: str = "k1", actors: tuple[str, ...] = ("gw",)) -> str:
        return delegations.token(subject, key_id=key, actors=actors, expires_at=far)

    first = token()
    assert token() == first
    others = {token(subject="bob"), token(key="k2"), token(actors=("research", "gw"))}
    assert first not in others and len(others) == 3
    assert delegations.mint("alice", key_id="k1", actors=("gw",), expires_at=far) != first


def test_a_token_is_minted_again_late_in_its_life_past_a_bound_or_after_a_key_change() -> None:
    delegations, keys, clock = _reusing()
    far = clock.now + 3600

    def token(expires_at: float = far) -> str:
        return delegations.token("alice", key_id="k1", actors=("gw",), expires_at=expires_at)

    first = token()
    clock.now += 300 * REUSE_FRACTION - 1
    assert token() == first
    clock.now += 1  # 80% of its lifetime has passed
    second = token()
    assert second != first and token() == second
    # A call bound to end sooner than the token gets one that ends by the bound.
    bound = clock.now + 10
    third = token(expires_at=bound)
    assert third != second and json.loads(third)["exp"] <= bound
    keys.rotate()
    assert token() != third


async def test_a_reused_token_is_refused_once_its_subject_s_key_is_revoked(world: World) -> None:
    store = world.gateway.api_keys
    dave_key = store.create("dave", label="test")
    dave, _ = await store.verify(dave_key)
    assert dave is not None and dave.api_key_id is not None

    def token() -> str:
        assert dave is not None and dave.api_key_id is not None
        return world.gateway.delegations.token(
            "dave", key_id=dave.api_key_id, actors=("researcher",), expires_at=time.time() + 300
        )

    reused = token()
    assert world.search("researcher", reused).status_code == 200
    assert token() == reused
    assert world.search("researcher", reused).status_code == 200  # the archivist's cache
    store.revoke(dave.api_key_id)
    assert token() == reused  # still the minting side's: the callee decides
    assert "revoked" in _refused(world, "researcher", reused)
    # Lifted by another agent, a token the callee has cached is refused all the same.
    alice = await world.identity("alice")
    assert alice.api_key_id is not None
    lifted = world.gateway.delegations.token(
        "alice", key_id=alice.api_key_id, actors=("researcher",), expires_at=time.time() + 300
    )
    assert world.search("researcher", lifted).status_code == 200
    assert "actor is researcher" in _refused(world, "middle", lifted)
