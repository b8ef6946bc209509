"""`smalt server --ssl-certfile --ssl-keyfile` serves HTTPS (issue 20): the SDK reaches it over TLS,
trusting the certificate through the standard SSL_CERT_FILE, and a plain-HTTP request is refused."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from tests.conftest import start_server

from smalt import MLClient
from smalt.errors import BackendError


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert, key_file


def test_the_server_speaks_tls_and_the_sdk_trusts_its_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    server = start_server(tmp_path / "ws", tmp_path / "server.log",
                          args=("--ssl-certfile", str(cert), "--ssl-keyfile", str(key)))  # fmt: skip
    try:
        url = f"https://127.0.0.1:{server.port}"
        with pytest.raises(BackendError):  # an unknown certificate is not trusted
            MLClient(url=url).close()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with MLClient(url=url) as client:
            assert client.workspace.name == "ws"
            assert client.jobs.list() == []
        assert httpx.get(f"{url}/health", verify=ssl.create_default_context(cafile=str(cert))).text == "OK"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5)
        assert "at https://127.0.0.1" in server.log.read_text()
    finally:
        server.stop()
