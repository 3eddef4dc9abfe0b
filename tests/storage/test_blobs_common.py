"""Behaviour every BlobStore shares, run against a local directory and the real S3 server."""
from __future__ import annotations

import hashlib
import threading
import urllib.request
from pathlib import Path

import pytest

from storage.blobs import BlobInfo, BlobStore, LocalBlobStore, S3BlobStore
from storage.errors import Conflict, NotFound


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "store")
    s3_store = request.getfixturevalue("s3_store")
    assert isinstance(s3_store, S3BlobStore)
    return s3_store


def test_store_satisfies_protocol(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_round_trip(store: BlobStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    info = store.put("jobs/j1/latents/0001.bin", data)
    assert info == BlobInfo("jobs/j1/latents/0001.bin", len(data), hashlib.sha256(data).hexdigest())
    assert store.get("jobs/j1/latents/0001.bin") == data
    assert store.stat("jobs/j1/latents/0001.bin") == info
    assert store.exists("jobs/j1/latents/0001.bin") and not store.exists("jobs/j1/latents/0002.bin")
    out = tmp_path / "out.bin"
    assert store.get_file("jobs/j1/latents/0001.bin", out) == info
    assert out.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_put_file_round_trip(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"frame" * 10_000)
    info = store.put_file("inputs/in.bin", src)
    assert info.sha256 == hashlib.sha256(src.read_bytes()).hexdigest() and info.size_bytes == 50_000
    assert store.get("inputs/in.bin") == src.read_bytes()
    with pytest.raises(NotFound):
        store.put_file("inputs/missing.bin", tmp_path / "missing.bin")


def test_empty_object(store: BlobStore) -> None:
    assert store.put("empty", b"").size_bytes == 0
    assert store.get("empty") == b""


def test_conditional_create(store: BlobStore) -> None:
    first = store.put("out/audio.wav", b"RIFF-original")
    assert store.put("out/audio.wav", b"RIFF-original") == first, "same bytes: idempotent"
    with pytest.raises(Conflict, match="out/audio.wav"):
        store.put("out/audio.wav", b"RIFF-different")
    assert store.get("out/audio.wav") == b"RIFF-original", "the original is untouched"


def test_racing_writers_of_different_bytes_one_wins_intact(store: BlobStore) -> None:
    workers = 6
    barrier = threading.Barrier(workers, timeout=30)
    outcomes: list[str] = [""] * workers

    def write(n: int) -> None:
        barrier.wait()
        try:
            store.put("race/key", f"writer {n} ".encode() * 5000)
            outcomes[n] = "ok"
        except Conflict:
            outcomes[n] = "conflict"

    threads = [threading.Thread(target=write, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("ok") == 1 and outcomes.count("conflict") == workers - 1, f"{outcomes=}"
    winner = outcomes.index("ok")
    assert store.get("race/key") == f"writer {winner} ".encode() * 5000


def test_missing_keys(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.stat("nope")
    with pytest.raises(NotFound):
        store.get_file("nope", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_list_and_delete(store: BlobStore) -> None:
    for key in ("jobs/a/1", "jobs/a/2", "jobs/b/1", "other"):
        store.put(key, key.encode())
    assert store.list() == ["jobs/a/1", "jobs/a/2", "jobs/b/1", "other"]
    assert store.list("jobs/a/") == ["jobs/a/1", "jobs/a/2"]
    assert store.list("jobs/") == ["jobs/a/1", "jobs/a/2", "jobs/b/1"]
    store.delete("jobs/a/1")
    store.delete("jobs/a/1")  # idempotent
    assert store.list("jobs/a") == ["jobs/a/2"]
    store.put("jobs/a/1", b"new bytes after delete")
    assert store.get("jobs/a/1") == b"new bytes after delete"


def test_presigned_url_downloads_the_bytes(store: BlobStore) -> None:
    store.put("share/clip.wav", b"RIFF....WAVEfmt ")
    url = store.presigned_url("share/clip.wav", expires_s=600)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"RIFF....WAVEfmt "
