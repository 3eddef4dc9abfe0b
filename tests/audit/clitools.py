"""Running `foley` in-process for the audit tests, configured by FOLEY_* variables."""
from __future__ import annotations

from pathlib import Path

import pytest

from render_farm.cli import main


def foley(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `foley ARGS` in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def set_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, store_root: Path) -> dict[str, str]:
    """FOLEY_* variables naming a database and a local store; run in tmp_path (no stray .env)."""
    values = {
        "FOLEY_DATA_DIR": str(tmp_path / "data"),
        "FOLEY_DATABASE_URL": db_url,
        "FOLEY_STORE": store_root.as_uri(),
    }
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FOLEY_AUDIT_KEY", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values
