"""What `certwatch stack` prints about the API key it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from certwatch.cli import stack


def test_the_banner_says_how_the_cli_finds_the_key_of_another_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--var /elsewhere` the banner said "the CLI reads it", but the CLI reads only
    ./var/credentials.json: every command then answered "no API key"."""
    monkeypatch.chdir(tmp_path)
    assert stack._how_the_cli_reads(Path("var") / "credentials.json") == "the CLI reads it"
    elsewhere = tmp_path / "trial" / "credentials.json"
    assert stack._how_the_cli_reads(elsewhere) == f"for the CLI: export CERTWATCH_CREDENTIALS={elsewhere}"
