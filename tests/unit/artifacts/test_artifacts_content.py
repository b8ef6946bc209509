"""Content-addressed upload, ignore files, and download of datastore bytes."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from smalt.artifacts import Location, download, list_files, path_digest, promote, upload
from smalt.errors import InvalidSpecError, NotFoundError


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def location(tmp_path: Path) -> Location:
    """A local fsspec datastore root, as a workspace's workspaceblobstore is."""
    root = tmp_path / "blobstore"
    root.mkdir()
    return Location(fsspec.filesystem("file", auto_mkdir=True), str(root))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src", {"train.py": "print('hi')\n", "pkg/util.py": "X = 1\n", "data/a.csv": "a\n1\n"})


def stored_files(location: Location) -> list[str]:
    root = Path(location.root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- digests -------------------------------------------------------------------------------------


def test_file_digest_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("a,b\n1,2\n")
    two.write_text("a,b\n1,2\n")
    assert path_digest(one) == path_digest(one) == path_digest(two)
    two.write_text("a,b\n1,3\n")
    assert path_digest(one) != path_digest(two)


def test_folder_digest_is_stable_across_copies(tmp_path: Path, folder: Path) -> None:
    copy = make_tree(tmp_path / "copy", {"pkg/util.py": "X = 1\n", "data/a.csv": "a\n1\n", "train.py": "print('hi')\n"})
    assert path_digest(folder) == path_digest(copy)


@pytest.mark.parametrize(
    "change",
    ["edit", "rename", "move", "add", "remove"],
)
def test_folder_digest_changes_with_any_content_change(folder: Path, change: str) -> None:
    before = path_digest(folder)
    if change == "edit":
        (folder / "pkg" / "util.py").write_text("X = 2\n")
    elif change == "rename":
        (folder / "train.py").rename(folder / "main.py")
    elif change == "move":
        (folder / "data" / "a.csv").rename(folder / "a.csv")
    elif change == "add":
        (folder / "README.md").write_text("")
    else:
        (folder / "data" / "a.csv").unlink()
    assert path_digest(folder) != before


def test_ignored_files_do_not_change_the_digest(folder: Path) -> None:
    (folder / ".amlignore").write_text("*.log\n")
    before = path_digest(folder)
    (folder / "run.log").write_text("noise")
    assert path_digest(folder) == before


# --- ignore files --------------------------------------------------------------------------------


def test_list_files_is_sorted_and_skips_git_and_pycache(folder: Path) -> None:
    make_tree(folder, {".git/HEAD": "ref", "pkg/__pycache__/util.cpython-311.pyc": "x"})
    names = [p.relative_to(folder).as_posix() for p in list_files(folder)]
    assert names == sorted(names)
    assert names == ["data/a.csv", "pkg/util.py", "train.py"]


@pytest.mark.parametrize("ignore_file", [".amlignore", ".gitignore"])
def test_ignore_file_is_honoured(folder: Path, ignore_file: str) -> None:
    make_tree(folder, {ignore_file: "data/\n*.log\n!keep.log\n", "run.log": "", "keep.log": "", "pkg/debug.log": ""})
    names = {p.relative_to(folder).as_posix() for p in list_files(folder)}
    assert names == {ignore_file, "keep.log", "pkg/util.py", "train.py"}


def test_amlignore_wins_over_gitignore(folder: Path) -> None:
    make_tree(folder, {".gitignore": "train.py\n", ".amlignore": "data/\n"})
    names = {p.relative_to(folder).as_posix() for p in list_files(folder)}
    assert "train.py" in names
    assert "data/a.csv" not in names


# --- upload and download -------------------------------------------------------------------------


def test_upload_of_the_same_folder_twice_stores_once(tmp_path: Path, folder: Path, location: Location) -> None:
    first = upload(folder, location)
    after_first = stored_files(location)
    copy = make_tree(
        tmp_path / "other" / "src", {f.relative_to(folder).as_posix(): f.read_text() for f in list_files(folder)}
    )
    second = upload(copy, location)
    assert first == second
    assert first.startswith("LocalUpload/") and first.endswith("/src")
    assert stored_files(location) == after_first
    assert len([f for f in after_first if f.endswith("train.py")]) == 1


def test_upload_of_a_file_keeps_its_name_and_bytes(tmp_path: Path, location: Location) -> None:
    local = tmp_path / "iris.csv"
    local.write_bytes(b"sepal,petal\n5.1,1.4\n\x00\xff")
    relative = upload(local, location)
    assert relative.endswith("/iris.csv")
    assert (Path(location.root) / relative).read_bytes() == local.read_bytes()
    assert upload(local, location) == relative


def test_different_content_is_stored_separately(tmp_path: Path, location: Location) -> None:
    local = tmp_path / "iris.csv"
    local.write_text("v1")
    first = upload(local, location)
    local.write_text("v2")
    second = upload(local, location)
    assert first != second
    assert (Path(location.root) / first).read_text() == "v1"
    assert (Path(location.root) / second).read_text() == "v2"


def test_upload_leaves_ignored_files_behind(folder: Path, location: Location) -> None:
    make_tree(folder, {".amlignore": "*.log\n", "run.log": "secret noise"})
    relative = upload(folder, location)
    stored = Path(location.root) / relative
    assert not (stored / "run.log").exists()
    assert (stored / "train.py").read_text() == "print('hi')\n"


def test_upload_with_a_prefix(folder: Path, location: Location) -> None:
    assert upload(folder, location, prefix="snapshots").startswith("snapshots/")


def test_an_empty_folder_is_an_invalid_spec(tmp_path: Path, location: Location) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidSpecError, match="no files to upload"):
        upload(empty, location)


def test_a_folder_whose_files_are_all_ignored_is_an_invalid_spec(tmp_path: Path, location: Location) -> None:
    folder = make_tree(tmp_path / "all-ignored", {".amlignore": "*\n", "a.txt": "x"})
    with pytest.raises(InvalidSpecError, match="no files to upload"):
        upload(folder, location)


def test_a_missing_path_is_an_invalid_spec(tmp_path: Path, location: Location) -> None:
    with pytest.raises(InvalidSpecError, match="does not exist"):
        upload(tmp_path / "gone", location)


def test_download_of_a_file_round_trips_the_bytes(tmp_path: Path, location: Location) -> None:
    local = tmp_path / "model.bin"
    local.write_bytes(bytes(range(256)) * 4)
    target = download(location, upload(local, location), tmp_path / "out")
    assert target == tmp_path / "out" / "model.bin"
    assert target.read_bytes() == local.read_bytes()


def test_download_of_a_folder_round_trips_every_file(tmp_path: Path, folder: Path, location: Location) -> None:
    target = download(location, upload(folder, location), tmp_path / "out")
    assert target == tmp_path / "out" / "src"
    got = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    want = {p.relative_to(folder).as_posix(): p.read_bytes() for p in list_files(folder)}
    assert got == want


def test_download_of_nothing_is_not_found(tmp_path: Path, location: Location) -> None:
    with pytest.raises(NotFoundError, match="Nothing is stored at 'LocalUpload/none'"):
        download(location, "LocalUpload/none", tmp_path / "out")


# --- promotion -----------------------------------------------------------------------------------
def test_promote_copies_and_replaces_a_folder_as_a_whole(tmp_path: Path, location: Location) -> None:
    old = make_tree(tmp_path / "old", {"stale.txt": "x"})
    promote(old, location, "azureml/job/out")
    new = make_tree(tmp_path / "new", {"a.txt": "a", "sub/b.txt": "b"})
    promote(new, location, "azureml/job/out")
    assert stored_files(location) == ["azureml/job/out/a.txt", "azureml/job/out/sub/b.txt"]
    assert (new / "a.txt").read_text() == "a"  # the local folder is left as it was
    assert not [p for p in (Path(location.root) / "azureml/job").iterdir() if p.name.startswith(".tmp-")]


def test_promote_consumes_a_scratch_folder_by_moving_it(tmp_path: Path, location: Location) -> None:
    scratch = make_tree(tmp_path / "scratch", {"a.txt": "a", "sub/b.txt": "b"})
    inode = (scratch / "a.txt").stat().st_ino
    promote(scratch, location, "azureml/job/out", consume=True)
    assert stored_files(location) == ["azureml/job/out/a.txt", "azureml/job/out/sub/b.txt"]
    assert not scratch.exists()
    assert (Path(location.root) / "azureml/job/out/a.txt").stat().st_ino == inode  # moved, not copied
