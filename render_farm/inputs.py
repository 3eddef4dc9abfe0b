"""Where a job's input comes from: a local file (read in place) or an object in the blob store
(fetched, verified, into the job's scratch directory)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from render_farm.context import StepContext
from render_farm.hashing import sha256_file
from storage.errors import InvalidInput, NotFound


def local_path_of(uri: str) -> Path | None:
    """The local path a `file://` URI or a plain path names; None for other schemes."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and uri[1:3] == ":\\"):
        return Path(uri)
    return None


def store_key_of(ctx: StepContext, uri: str) -> str | None:
    """The key of `uri` inside the configured store, if it lies there."""
    root = ctx.store.uri("x")[:-1]
    return uri[len(root):] if uri.startswith(root) else None


def materialize_input(ctx: StepContext, uri: str, work_dir: Path) -> tuple[Path, str]:
    """A readable local copy of the input and its SHA-256."""
    path = local_path_of(uri)
    if path is not None:
        if not path.exists():
            raise NotFound(f"{path}: no such file")
        if not path.is_file():
            raise InvalidInput(f"{path}: not a regular file")
        return path, sha256_file(path)
    key = store_key_of(ctx, uri)
    if key is None:
        raise InvalidInput(f"{uri}: inputs must be local files or objects in the configured store ({ctx.store.uri('')})")
    dest = work_dir / ("input" + Path(key).suffix)
    info = ctx.store.get_file(key, dest)
    return dest, info.sha256
