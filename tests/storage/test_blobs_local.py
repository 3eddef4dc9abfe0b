"""LocalBlobStore specifics: on-disk layout, corruption detection, key collisions."""
from __future__ import annotations

from pathlib import Path

import pytest

from storage.blobs import LocalBlobStore
from storage.errors import Conflict, IntegrityError


def test_bytes_are_stored_as_is_and_sidecar_lives_outside_the_keys(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a/b.bin", b"payload")
    assert store.object_path("a/b.bin") == tmp_path.resolve() / "objects" / "a" / "b.bin"
    assert store.object_path("a/b.bin").read_bytes() == b"payload"
    assert store.list() == ["a/b.bin"], "the sidecar is not a key"
    assert list((tmp_path / "tmp").iterdir()) == [], "no temp files left behind"


@pytest.mark.parametrize("how", ["flip", "truncate", "append"])
def test_corrupted_bytes_raise_integrity_error_naming_the_key(tmp_path: Path, how: str) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("jobs/j/out.wav", b"0123456789" * 100)
    path = store.object_path("jobs/j/out.wav")
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[500] ^= 0x01
    elif how == "truncate":
        del data[-1]
    else:
        data += b"x"
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="jobs/j/out.wav"):
        store.get("jobs/j/out.wav")
    target = tmp_path / "copy.wav"
    with pytest.raises(IntegrityError, match="jobs/j/out.wav"):
        store.get_file("jobs/j/out.wav", target)
    assert not target.exists() and [p for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_key_and_a_key_under_it_conflict(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a/b", b"1")
    with pytest.raises(Conflict):
        store.put("a/b/c", b"2")
    with pytest.raises(Conflict):
        store.put("a", b"3")
    assert store.list() == ["a/b"]


def test_interrupted_writer_is_repaired_by_the_same_bytes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("k", b"same")
    store.object_path("k").unlink()  # as if a writer died between publishing sidecar and bytes
    assert not store.exists("k")
    store.put("k", b"same")
    assert store.get("k") == b"same"
