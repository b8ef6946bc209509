"""What a submission carries (client.bundle): the job file and every local file it names,
followed through component files; what a file names is kept until a YAML file read changes."""

from __future__ import annotations

import os
import tarfile
import textwrap
from pathlib import Path
from typing import IO

import pytest

from smalt.client import bundle


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path / "src" / "train.py", "print('train')\n")
    write(tmp_path / "src" / ".amlignore", "*.log\n")
    write(tmp_path / "src" / "debug.log", "ignored\n")
    write(tmp_path / "src" / ".git" / "HEAD", "ref: main\n")
    write(tmp_path / "data" / "rows.csv", "a\n1\n")
    write(tmp_path / "envs" / "conda.yml", "dependencies: [python=3.11]\n")
    write(tmp_path / "components" / "train.yml", """
        type: command
        code: ../src
        command: python train.py
        environment: {image: x, conda_file: ../envs/conda.yml}
    """)  # fmt: skip
    return write(tmp_path / "jobs" / "pipeline.yml", f"""
        type: pipeline
        inputs:
          rows: {{type: uri_file, path: {tmp_path / 'data' / 'rows.csv'}}}
        jobs:
          train:
            component: ../components/train.yml
          remote:
            type: command
            command: ls
            code: azureml://datastores/workspaceblobstore/paths/x
    """)  # fmt: skip


def names(archive: IO[bytes]) -> set[str]:
    with archive, tarfile.open(fileobj=archive, mode="r") as tar:
        return set(tar.getnames())


def test_a_pipeline_takes_its_components_their_code_and_its_data(project: Path) -> None:
    archive, inside, origin = bundle.pack(project)
    assert (inside, origin) == ("jobs/pipeline.yml", str(project.parent.parent))
    assert names(archive) == {
        "jobs/pipeline.yml", "components/train.yml", "envs/conda.yml", "data/rows.csv",
        "src", "src/train.py", "src/.amlignore",  # debug.log ignored as .amlignore says; .git left out
    }  # fmt: skip


def test_an_unchanged_file_is_not_parsed_again(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = bundle.referenced(project)
    parsed: list[Path] = []
    real = bundle._read
    monkeypatch.setattr(bundle, "_read", lambda file: parsed.append(file) or real(file))
    assert bundle.referenced(project) == first and parsed == []

    # A component file changed: read again, and what it names now is taken.
    component = project.parent.parent / "components" / "train.yml"
    component.write_text(component.read_text().replace("../envs/conda.yml", "../data/rows.csv") + "\n")
    os.utime(component, ns=(1, 1))
    again = bundle.referenced(project)
    assert parsed and project.parent.parent / "envs" / "conda.yml" not in again


def test_a_component_file_that_appears_is_read(tmp_path: Path) -> None:
    job = write(tmp_path / "job.yml", "type: pipeline\njobs:\n  a:\n    component: ./later.yml\n")
    assert bundle.referenced(job) == {job.resolve()}
    write(tmp_path / "later.yml", "type: command\ncode: ./code\ncommand: ls\n")
    write(tmp_path / "code" / "x.py", "")
    assert bundle.referenced(job) == {job.resolve(), (tmp_path / "later.yml").resolve(), (tmp_path / "code").resolve()}


def test_a_file_without_path_keys_needs_no_yaml_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = write(tmp_path / "job.yml", "type: command\ncommand: echo hi\nenvironment_variables: {my_code: 1}\n")
    monkeypatch.setitem(__import__("sys").modules, "ruamel.yaml", None)  # importing it would fail
    archive, inside, _ = bundle.pack(job)
    assert names(archive) == {"job.yml"} and inside == "job.yml"


def test_a_folder_is_packed_as_an_upload_takes_it(project: Path) -> None:
    # The thin client cannot import smalt.artifacts (it would load the entities): its own walk
    # must take exactly the files that the server's snapshot of the folder takes.
    from smalt.artifacts import list_files

    src = project.parent.parent / "src"
    write(src / "__pycache__" / "train.cpython-311.pyc", "")
    write(src / "pkg" / "mod.py", "")
    assert sorted(bundle._folder_files(src)) == list_files(src)
