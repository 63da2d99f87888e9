"""A pinned HTTPS connection goes to the checked IP but still sends the host name as SNI and
verifies the certificate against the host name, never against the IP."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from bastion.egress import EgressPolicy, egress_client
from tests.egress.conftest import Recorder, TableResolver, serve

WRONG_NAME = r"not valid for 'wrong\.test'"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorder]:
    """An HTTPS server on 127.0.0.1 whose certificate names only "localhost" (no IP)."""
    cert = ca.issue_cert("localhost")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = Path(folder, "cert.pem"), Path(folder, "key.pem")
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    yield from serve({"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)})


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def client(ca: trustme.CA) -> httpx.AsyncClient:
    """A client that resolves every name to 127.0.0.1 and trusts the test CA."""
    resolver = TableResolver({"localhost": [["127.0.0.1"]], "wrong.test": [["127.0.0.1"]]})
    policy = EgressPolicy(
        allowed_hosts=("localhost", "wrong.test", "127.0.0.1"), allow_private=("127.0.0.1",)
    )
    return egress_client(policy, resolver=resolver, verify=trusting(ca))


async def test_pinned_connection_verifies_the_host_name(
    ca: trustme.CA, https_server: Recorder
) -> None:
    async with client(ca) as http:
        response = await http.get(f"https://localhost:{https_server.port}/tls")
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", https_server.port)
        assert stream.get_extra_info("ssl_object").server_hostname == "localhost"
    assert response.text == "ok"
    assert https_server.seen[-1].host == f"localhost:{https_server.port}"


async def test_a_certificate_for_another_name_is_refused(
    ca: trustme.CA, https_server: Recorder
) -> None:
    async with client(ca) as http:
        with pytest.raises(httpx.ConnectError, match=WRONG_NAME):
            await http.get(f"https://wrong.test:{https_server.port}/tls")
        # And the IP the connection goes to is not what is verified: by IP it fails too.
        with pytest.raises(httpx.ConnectError, match="IP address mismatch"):
            await http.get(f"https://127.0.0.1:{https_server.port}/tls")


async def test_a_name_verified_once_does_not_lend_its_connection(
    ca: trustme.CA, https_server: Recorder
) -> None:
    # Both names are served from the same address; the second must get its own handshake.
    async with client(ca) as http:
        assert (await http.get(f"https://localhost:{https_server.port}/")).status_code == 200
        with pytest.raises(httpx.ConnectError, match=WRONG_NAME):
            await http.get(f"https://wrong.test:{https_server.port}/")
