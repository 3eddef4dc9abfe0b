"""Blob stores: a local directory or an S3 bucket behind one BlobStore protocol.

    store = open_store("file:///srv/foley/store")            # or a plain path
    store = open_store("s3://bucket/prefix", s3_endpoint_url="http://minio:9000")
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from storage.blobs.base import BlobInfo, BlobStore, validate_key
from storage.blobs.local import LocalBlobStore
from storage.errors import InvalidInput

if TYPE_CHECKING:
    from storage.blobs.s3 import S3BlobStore, S3Options

__all__ = ["BlobInfo", "BlobStore", "LocalBlobStore", "S3BlobStore", "S3Options", "open_store", "validate_key"]


def __getattr__(name: str) -> Any:
    """The S3 store loads boto3 on first use, so processes on a local store never import it."""
    if name in ("S3BlobStore", "S3Options"):
        from storage.blobs import s3

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str, s3_endpoint_url: str | None = None, *, s3_options: S3Options | None = None) -> BlobStore:
    """The store a URL names: `file:///abs/dir`, a plain path, or `s3://bucket/prefix`.

    Nothing is contacted yet: an unreachable S3 endpoint surfaces as ServiceUnavailable on the
    first call.
    """
    if not url:
        raise InvalidInput("empty blob store URL")
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise InvalidInput(f"S3 store URL needs a bucket: {url!r} (use s3://bucket/prefix)")
        if parts.query or parts.fragment:
            raise InvalidInput(f"S3 store URL takes no query or fragment: s3://{parts.netloc}{parts.path}")
        from storage.blobs.s3 import S3BlobStore

        return S3BlobStore(parts.netloc, parts.path, endpoint_url=s3_endpoint_url, options=s3_options)
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"file:// store URL must be local: {url!r}")
        return LocalBlobStore(Path(unquote(parts.path)))
    if "://" in url:
        raise InvalidInput(f"unsupported blob store URL {url.split('://')[0]}://… (use file:// or s3://)")
    return LocalBlobStore(Path(url))
