"""A certificate authority of the test's own (trustme), with a server certificate for
loopback (localhost, 127.0.0.1, ::1) and a client certificate, written to files as an
operator would configure them."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme


class TestCA:
    __test__ = False  # (not a test class)

    def __init__(
        self, directory: Path, server_names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    ) -> None:
        self.authority = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.authority.cert_pem.write_to_path(self.ca_file)
        server = self.authority.issue_cert(*server_names)
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server-key.pem"
        server.cert_chain_pems[0].write_to_path(self.server_cert)
        server.private_key_pem.write_to_path(self.server_key)
        client = self.authority.issue_cert("gateway.example.com")
        self.client_cert = directory / "client.pem"
        self.client_key = directory / "client-key.pem"
        client.cert_chain_pems[0].write_to_path(self.client_cert)
        client.private_key_pem.write_to_path(self.client_key)

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context

    def uvicorn_options(self, *, require_client_cert: bool = False) -> dict:
        """uvicorn.Config's TLS options for a fake provider served with this CA."""
        options = {"ssl_certfile": str(self.server_cert), "ssl_keyfile": str(self.server_key)}
        if require_client_cert:
            options |= {"ssl_ca_certs": str(self.ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}  # type: ignore[dict-item]
        return options
