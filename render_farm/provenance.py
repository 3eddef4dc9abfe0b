"""Provenance of a job: who submitted what, with which weights, code and software, on which host.

    payload["provenance"] = job_provenance(ctx.store, input_uri, project=project, user=user,
                                           model_name=model.name, model_sha256=model.sha256)

The result is plain JSON data, recorded in the `job.submitted` event (so it is inside the hash
chain) and shown by `foley history --format json`, `foley audit show` and the exports:

    {"user": "ann", "project": "ep101",
     "input": {"uri": "file:///media/ep101.mov", "sha256": "…"},
     "model": {"name": "tiny", "checkpoint_sha256": "…"},
     "code": {"package": "foley-render-farm", "version": "0.1.0", "git_commit": "537595e…"},
     "software": {"python": "3.11.9", "torch": "2.13.0", "deepspeed": "not installed",
                  "pyav": "18.1.0", "numpy": "2.1.3", "torch_threads": 16},
     "host": "gpu-node-3"}

The code version (package version, and the git commit when the source tree is a git checkout)
and the software versions are read once per process. Nothing here fails a submission: a value
that cannot be found is recorded as None (git absent, no user entry, an input that cannot be
hashed yet).
"""
from __future__ import annotations

import functools
import logging
import re
import socket
from pathlib import Path
from typing import Any

from render_farm.hashing import sha256_file
from render_farm.inputs import local_path_of
from storage.blobs import BlobStore

log = logging.getLogger(__name__)

PACKAGE = "foley-render-farm"
_SHA1 = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1 or SHA-256 object names


def job_provenance(
    store: BlobStore | None,
    input_uri: str,
    *,
    project: str,
    user: str,
    model_name: str,
    model_sha256: str | None,
    input_sha256: str | None = None,
) -> dict[str, Any]:
    """Provenance of one job as plain JSON data (see the module docstring for its shape).

    `input_sha256` when the caller knows it; otherwise a local input is hashed here and a store
    object's recorded SHA-256 is read (None if neither is possible: ingest records it later).
    """
    return {
        "user": user,
        "project": project,
        "input": {"uri": input_uri, "sha256": input_sha256 or input_digest(store, input_uri)},
        "model": {"name": model_name, "checkpoint_sha256": model_sha256},
        "code": code_version(),
        "software": {**dict(software()), "torch_threads": _torch_threads()},
        "host": socket.gethostname(),
    }


def input_digest(store: BlobStore | None, uri: str) -> str | None:
    """SHA-256 of a local input file, or the recorded SHA-256 of an input in `store`; None otherwise."""
    try:
        path = local_path_of(uri)
        if path is not None:
            return sha256_file(path) if path.is_file() else None
        if store is not None:
            root = store.uri("x")[:-1]
            if uri.startswith(root):
                return store.stat(uri[len(root):]).sha256
    except Exception as exc:  # noqa: BLE001 - provenance never fails a submission; ingest hashes again
        log.warning("provenance: cannot hash input %s: %s", uri, exc)
    return None


@functools.cache
def software() -> tuple[tuple[str, str], ...]:
    """Versions of python, torch, DeepSpeed ("not installed"), PyAV and numpy; read once."""
    from render_farm.report import software_versions

    versions = software_versions()
    return tuple((k, versions[k]) for k in ("python", "torch", "deepspeed", "pyav", "numpy") if k in versions)


def _torch_threads() -> int | None:
    """Intra-op threads of this process: CPU float sums can depend on it, so a reproduction should match it."""
    import torch

    return int(torch.get_num_threads())


@functools.cache
def code_version() -> dict[str, str | None]:
    """This code's package version and, if its source tree is a git checkout, the commit; read once."""
    return {"package": PACKAGE, "version": _package_version(), "git_commit": git_commit(_source_root())}


def _source_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _package_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        import render_farm

        return getattr(render_farm, "__version__", None)


def git_commit(root: Path) -> str | None:
    """The commit HEAD names in the git checkout at `root`, read from the files in .git (no git
    binary needed); None when `root` is no checkout or anything about it is unexpected."""
    try:
        git_dir = _git_dir(root)
        if git_dir is None:
            return None
        common = git_dir
        if (git_dir / "commondir").is_file():  # a linked worktree keeps refs in the main .git
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        head = (git_dir / "HEAD").read_text().strip()
        for _ in range(5):  # follow symbolic refs
            if not head.startswith("ref:"):
                break
            ref = head[4:].strip()
            for base in (git_dir, common):
                if (base / ref).is_file():
                    head = (base / ref).read_text().strip()
                    break
            else:
                head = _packed_ref(common, ref) or ""
        return head if _SHA1.fullmatch(head) else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.debug("provenance: no git commit under %s: %s", root, exc)
        return None


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text().strip()
        if text.startswith("gitdir:"):
            return (root / text[len("gitdir:"):].strip()).resolve()
    return None


def _packed_ref(common: Path, ref: str) -> str | None:
    packed = common / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref:
            return parts[0]
    return None
