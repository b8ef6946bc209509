"""An S3 datastore against a real S3 protocol server on loopback (moto's server, not a mock of s3fs)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smalt import MLClient
from smalt.entities import Data, DatastoreCredentials, S3Datastore
from smalt.errors import NotFoundError

ACCESS_KEY_ID = "AKIASMALTTESTKEY0001"
SECRET_ACCESS_KEY = "s3cr3t-smalt-test-never-shown-0123456789"
Smalt = Callable[..., Any]


@dataclass(frozen=True)
class S3:
    endpoint_url: str
    client: Any  # a boto3 S3 client

    def new_bucket(self) -> str:
        bucket = f"smalt-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=bucket)
        return bucket


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
    )  # fmt: skip
    try:
        yield S3(endpoint, client)
    finally:
        client.close()
        server.stop()


@pytest.fixture
def bucket(s3: S3) -> str:
    name = s3.new_bucket()
    s3.client.put_object(Bucket=name, Key="raw/hello.txt", Body=b"hello from s3\n")
    s3.client.put_object(Bucket=name, Key="images/a/1.bin", Body=b"\x00\x01")
    s3.client.put_object(Bucket=name, Key="images/b/2.bin", Body=b"\x02\x03\x04")
    return name


def s3_datastore(s3: S3, bucket: str, name: str = "s3ds") -> S3Datastore:
    return S3Datastore(
        name=name, bucket=bucket, endpoint_url=s3.endpoint_url,
        credentials=DatastoreCredentials(access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY),
    )  # fmt: skip


def test_data_on_an_s3_datastore_reads_back_its_bytes(ml_client: MLClient, s3: S3, bucket: str, tmp_path: Path) -> None:
    ml_client.datastores.create_or_update(s3_datastore(s3, bucket))

    data = ml_client.data.create_or_update(
        Data(name="hello", type="uri_file", path="azureml://datastores/s3ds/paths/raw/hello.txt")
    )
    target = ml_client.data.download("hello", version=data.version, download_path=tmp_path / "dl")

    assert data.path == "azureml://datastores/s3ds/paths/raw/hello.txt"
    assert target == tmp_path / "dl" / "hello" / "hello.txt"
    assert target.read_bytes() == b"hello from s3\n"


def test_a_folder_on_s3_downloads_as_a_folder(ml_client: MLClient, s3: S3, bucket: str, tmp_path: Path) -> None:
    ml_client.datastores.create_or_update(s3_datastore(s3, bucket))
    ml_client.data.create_or_update(
        Data(name="images", type="uri_folder", path="azureml://datastores/s3ds/paths/images")
    )

    target = ml_client.data.download("images", label="latest", download_path=tmp_path / "dl")

    assert target == tmp_path / "dl" / "images" / "images"
    assert (target / "a" / "1.bin").read_bytes() == b"\x00\x01"
    assert (target / "b" / "2.bin").read_bytes() == b"\x02\x03\x04"


def test_s3_datastore_from_yaml_through_the_cli(
    smalt: Smalt, s3: S3, bucket: str, tmp_path: Path, workspace_path: Path
) -> None:
    spec = tmp_path / "s3.yml"
    spec.write_text(
        "name: s3ds\ntype: s3\n"
        f"bucket: {bucket}\nendpoint_url: {s3.endpoint_url}\n"
        f"credentials:\n  access_key_id: {ACCESS_KEY_ID}\n  secret_access_key: {SECRET_ACCESS_KEY}\n"
    )

    created = smalt("datastore", "create", "-f", str(spec))
    assert created.exit_code == 0, created.stderr
    registered = smalt(
        "data", "create", "--name", "hello", "--type", "uri_file",
        "--path", "azureml://datastores/s3ds/paths/raw/hello.txt",
    )  # fmt: skip
    assert registered.exit_code == 0, registered.stderr
    downloaded = smalt("data", "download", "--name", "hello", "--version", "1", "--download-path", str(tmp_path / "dl"))

    assert downloaded.exit_code == 0, downloaded.stderr
    assert (tmp_path / "dl" / "hello" / "hello.txt").read_bytes() == b"hello from s3\n"
    assert created.json()["credentials"]["type"] == "access_key"
    for output in ("json", "yaml", "table"):
        for args in (("show", "--name", "s3ds"), ("list",)):
            result = smalt("datastore", *args, "-o", output)
            assert result.exit_code == 0, result.stderr
            assert SECRET_ACCESS_KEY not in result.stdout
    for file in workspace_path.glob("metadata.db*"):
        assert SECRET_ACCESS_KEY.encode() not in file.read_bytes()


def test_s3_datastore_with_credentials_from_the_environment(
    ml_client: MLClient, s3: S3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    ml_client.datastores.create_or_update(
        S3Datastore(name="s3env", bucket=bucket, endpoint_url=s3.endpoint_url, prefix="raw")
    )
    ml_client.data.create_or_update(
        Data(name="hello", type="uri_file", path="azureml://datastores/s3env/paths/hello.txt")
    )

    target = ml_client.data.download("hello", version=1, download_path=tmp_path / "dl")

    assert target.read_bytes() == b"hello from s3\n"


def test_a_missing_object_is_a_clear_error(
    ml_client: MLClient, s3: S3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    ml_client.datastores.create_or_update(S3Datastore(name="s3env", bucket=bucket, endpoint_url=s3.endpoint_url))
    ml_client.data.create_or_update(Data(name="gone", type="uri_file", path="azureml://datastores/s3env/paths/no.txt"))

    with pytest.raises(NotFoundError, match="Nothing is stored at 'no.txt'"):
        ml_client.data.download("gone", version=1, download_path=tmp_path / "dl")
    assert not (tmp_path / "dl" / "gone" / "no.txt").exists()
