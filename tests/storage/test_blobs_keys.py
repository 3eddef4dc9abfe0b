"""Blob keys: what validate_key accepts, and that no accepted key escapes a local store's root."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.blobs import LocalBlobStore, S3BlobStore, open_store, validate_key
from storage.errors import InvalidInput

BAD_KEYS = [
    "", "/abs", "/etc/passwd", "../x", "a/../../b", "a/..", "..", ".", "./a", "a/./b", "a//b", "a/", "a\\b",
    "..\\x", "a\x00b", "a b", "é", "a?b", "a:b", "x" * 256, "/".join(["abc"] * 300),
]
GOOD_KEYS = ["a", "jobs/0f3a/latents/window-0001.npy", "A-Z_0.9", "a/b/c/d/e", "...a", "a..b", "x" * 255]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected(key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        validate_key(key)
    store = LocalBlobStore(tmp_path)
    with pytest.raises(InvalidInput):
        store.put(key, b"x")
    with pytest.raises(InvalidInput):
        store.get(key)
    assert list(tmp_path.rglob("*.json")) == []


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\-_\x00 ")), max_size=12))
def test_no_accepted_key_escapes_the_root(key: str) -> None:
    root = Path("/srv/store")
    try:
        validate_key(key)
    except InvalidInput:
        return
    path = (root / "objects" / key).resolve()
    assert path.is_relative_to(root / "objects") and path != root / "objects", f"{key=} {path=}"


def test_open_store_parses_urls(tmp_path: Path) -> None:
    local = open_store(tmp_path.as_uri())
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path.resolve()
    assert isinstance(open_store(str(tmp_path / "plain")), LocalBlobStore)
    s3 = open_store("s3://bucket/some/prefix/", "http://127.0.0.1:9")
    assert isinstance(s3, S3BlobStore) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix/")
    assert s3.uri("k/v") == "s3://bucket/some/prefix/k/v"
    for bad in ("", "s3://", "s3:///nobucket", "gs://b/p", "file://otherhost/x", "s3://b/../x"):
        with pytest.raises(InvalidInput):
            open_store(bad)
