"""What only the local store has: directories, symlinks, temporary files; and addresses."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainmq.errors import ConfigurationError
from trainmq.store import InvalidKey, KeyConflict, LocalStore, S3Store, open_store
from trainmq.store.base import TEMP_PREFIX


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_key_cannot_also_be_a_directory(local: LocalStore) -> None:
    local.put("a", b"1")
    with pytest.raises(KeyConflict):
        local.put("a/b", b"2")
    local.put("x/y", b"3")
    with pytest.raises(KeyConflict):
        local.put("x", b"4")
    with pytest.raises(KeyConflict):
        local.create("x", b"4")
    assert list(local.list_keys()) == ["a", "x/y"]
    assert files_under(local.root) == ["a", "x/y"]


def test_a_symlink_out_of_the_root_is_refused(local: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (local.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey, match="outside the store"):
        local.put("link/escaped", b"x")
    with pytest.raises(InvalidKey):
        local.get("link/escaped")
    assert list(outside.iterdir()) == []


def test_writes_leave_no_temporary_files(local: LocalStore) -> None:
    local.put("d/a", b"1")
    local.create("d/b", b"2")
    with pytest.raises(Exception, match="already exists"):
        local.create("d/b", b"3")
    assert files_under(local.root) == ["d/a", "d/b"]


def test_temporary_files_of_a_crashed_writer_are_not_listed(local: LocalStore) -> None:
    local.put("d/a", b"1")
    (local.root / "d" / f"{TEMP_PREFIX}dead").write_bytes(b"half a blob")
    assert list(local.list_keys()) == ["d/a"]


def test_delete_prunes_empty_directories(local: LocalStore) -> None:
    local.put("a/b/c/d", b"1")
    local.put("a/keep", b"2")
    local.delete("a/b/c/d")
    assert sorted(p.name for p in (local.root / "a").iterdir()) == ["keep"]
    local.put("a/b", b"now a blob")
    assert list(local.list_keys()) == ["a/b", "a/keep"]


def test_files_are_readable_by_the_group(local: LocalStore) -> None:
    local.put("shard.bin", b"x")
    mode = os.stat(local.root / "shard.bin").st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_bucket_name_defaults_to_the_directory_name(tmp_path: Path) -> None:
    assert LocalStore(tmp_path / "datasets").bucket_name == "datasets"
    assert LocalStore(tmp_path / "d", bucket_name="team-data").bucket_name == "team-data"


# -- addresses --------------------------------------------------------------------------


def test_open_store_addresses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_uri = open_store((tmp_path / "a").as_uri())
    assert isinstance(by_uri, LocalStore) and by_uri.root == tmp_path / "a"
    by_path = open_store(tmp_path / "b")
    assert isinstance(by_path, LocalStore) and by_path.root == tmp_path / "b"
    monkeypatch.chdir(tmp_path)
    default = open_store()
    assert isinstance(default, LocalStore)
    assert default.root == tmp_path / ".trainmq" / "store"
    s3 = open_store("s3://my-bucket/datasets/v1/")
    assert isinstance(s3, S3Store)
    assert s3.address == "s3://my-bucket/datasets/v1"
    assert s3.location("k") == ("my-bucket", "datasets/v1/k")
    assert open_store("s3://my-bucket").location("k") == ("my-bucket", "k")


@pytest.mark.parametrize(
    "address",
    ["ftp://host/x", "s3:///prefix", "s3://b/p?x=1", "file://remote-host/x", "s3://b/../x"],
)
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(address)


def test_an_s3_client_with_a_local_address_is_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="s3_client"):
        open_store(tmp_path, s3_client=object())


def test_s3_part_size_below_the_s3_minimum_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="part_size"):
        S3Store("bucket", part_size=1024)
    with pytest.raises(ConfigurationError, match="list_page_size"):
        S3Store("bucket", list_page_size=5000)


def test_the_store_layer_imports_only_errors() -> None:
    import trainmq.store

    package = Path(trainmq.store.__file__).parent
    imported: set[str] = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.split(".")[0] == "trainmq"}
    assert ours and all(name.startswith(("trainmq.store", "trainmq.errors")) for name in ours)


def test_importing_the_store_does_not_import_boto3() -> None:
    code = "import sys, trainmq.store, trainmq.store.claimcheck; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_listing_never_follows_or_shows_symlinks(local: LocalStore, tmp_path: Path) -> None:
    """A link inside the root must not reveal the names of what it points at."""
    outside = tmp_path / "elsewhere"
    (outside / "deeper").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"s")
    (outside / "deeper" / "more.txt").write_bytes(b"m")
    local.put("kept/a", b"1")
    (local.root / "link").symlink_to(outside)
    (local.root / "kept" / "inner-link").symlink_to(outside)
    (local.root / "kept" / "file-link").symlink_to(outside / "secret.txt")
    assert list(local.list_keys()) == ["kept/a"]
    assert list(local.list_keys("kept/")) == ["kept/a"]
    assert list(local.list_keys("link/")) == []
    assert list(local.list_keys("link/deeper/")) == []
    assert list(local.list_keys("kept/inner-link/")) == []
