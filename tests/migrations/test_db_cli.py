"""`foley db upgrade / downgrade / current` on a real SQLite file."""
from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import migrations
from render_farm.cli import db_cmd


def _foley() -> click.Group:
    @click.group()
    def foley() -> None:
        """Test harness group."""

    db_cmd.register(foley)
    return foley


def test_db_commands_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli' / 'farm.db'}"
    head = migrations.head()
    runner = CliRunner()
    result = runner.invoke(_foley(), ["db", "current", "--url", url])
    assert result.exit_code == 0 and "at base" in result.output, result.output
    result = runner.invoke(_foley(), ["db", "upgrade", "--url", url])
    assert result.exit_code == 0 and f"at {head}" in result.output, result.output
    result = runner.invoke(_foley(), ["db", "current", "--url", url])
    assert result.exit_code == 0 and f"at {head} (head {head})" in result.output, result.output
    result = runner.invoke(_foley(), ["db", "downgrade", "base", "--url", url])
    assert result.exit_code == 0 and "at base" in result.output, result.output


def test_db_url_defaults_to_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOLEY_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    result = CliRunner().invoke(_foley(), ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").is_file()
