"""render_farm.provenance without a render: the git commit read from .git files (or None), input
hashes of local files and store objects, and a submission that never fails for want of either."""
from __future__ import annotations

import hashlib
from pathlib import Path

from render_farm.provenance import code_version, git_commit, input_digest, job_provenance
from storage.blobs import LocalBlobStore

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_git_commit_follows_refs_packed_refs_and_worktrees(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_commit(repo) is None  # a branch with no commit yet
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{COMMIT} refs/heads/main\n")
    assert git_commit(repo) == COMMIT
    other = COMMIT[::-1]
    (repo / ".git" / "refs" / "heads" / "main").write_text(other + "\n")
    assert git_commit(repo) == other
    (repo / ".git" / "HEAD").write_text(COMMIT + "\n")  # detached
    assert git_commit(repo) == COMMIT

    worktree = tmp_path / "wt"
    gitdir = repo / ".git" / "worktrees" / "wt"
    gitdir.mkdir(parents=True)
    (gitdir / "HEAD").write_text("ref: refs/heads/main\n")
    (gitdir / "commondir").write_text("../..\n")
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {gitdir}\n")
    assert git_commit(worktree) == other

    assert git_commit(tmp_path / "nowhere") is None
    (repo / ".git" / "HEAD").write_bytes(b"\xff\xfe garbage")
    assert git_commit(repo) is None


def test_input_hashes_and_a_provenance_that_never_fails(tmp_path: Path) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(b"frames" * 100)
    store = LocalBlobStore(tmp_path / "store")
    info = store.put("inputs/abc/in.mp4", b"stored frames")
    assert input_digest(store, video.as_uri()) == hashlib.sha256(video.read_bytes()).hexdigest()
    assert input_digest(store, store.uri(info.key)) == info.sha256
    assert input_digest(store, (tmp_path / "gone.mp4").as_uri()) is None
    assert input_digest(store, "s3://elsewhere/x.mp4") is None
    assert input_digest(store, store.uri("inputs/missing.mp4")) is None

    prov = job_provenance(None, "https://example.com/x.mp4", project="p", user="u", model_name="tiny",
                          model_sha256=None)
    assert prov["input"] == {"uri": "https://example.com/x.mp4", "sha256": None}
    assert prov["code"] == code_version() and prov["code"]["version"]
    assert set(prov["software"]) >= {"python", "torch", "deepspeed", "pyav", "numpy", "torch_threads"}
