"""``replygate reply explain`` over every sample reply, as expected.json describes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from replygate.cli.main import app

SAMPLES = Path(__file__).parents[1] / "data" / "replies"
EXPECTED: list[dict[str, Any]] = json.loads((SAMPLES / "expected.json").read_text("utf-8"))
KEYS = {"decision", "comment", "automatic", "token", "reasons"}


def _check(result: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(result) == KEYS
    assert result["decision"] == expected["decision"]
    assert result["automatic"] is expected["automatic"]
    assert result["token"] == expected["token"]
    for wanted in expected["comment_contains"]:
        assert wanted in result["comment"]
    for unwanted in expected["comment_excludes"]:
        assert unwanted not in result["comment"]
    assert isinstance(result["reasons"], list)
    assert all(isinstance(reason, str) for reason in result["reasons"])
    if expected["decision"] is None:
        assert result["comment"] == ""


def test_every_sample_has_an_expectation() -> None:
    files = {path.name for path in SAMPLES.glob("*.eml")}
    assert files == {entry["file"] for entry in EXPECTED}
    assert len(files) == 51


@pytest.mark.parametrize("expected", EXPECTED, ids=[entry["file"] for entry in EXPECTED])
def test_sample_through_the_cli(expected: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        app, ["reply", "explain", str(SAMPLES / expected["file"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1  # exactly one JSON object
    _check(json.loads(lines[0]), expected)


@pytest.mark.parametrize(
    "name",
    [
        "001-outlook-desktop-plain-approve.eml",
        "021-gmail-web-no-problem-approved.eml",
        "050-exchange-ndr.eml",
    ],
)
def test_sample_through_a_real_process(name: str) -> None:
    expected = next(entry for entry in EXPECTED if entry["file"] == name)
    process = subprocess.run(
        [sys.executable, "-m", "replygate", "reply", "explain", str(SAMPLES / name), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    _check(json.loads(process.stdout), expected)


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["reply", "explain", str(tmp_path / "missing.eml"), "--json"])
    assert result.exit_code == 2
    assert "cannot read" in result.output


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe garbage", b"Subject: only a header"])
def test_any_readable_input_exits_0(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.eml"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["reply", "explain", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == KEYS


def test_summary_without_json() -> None:
    path = SAMPLES / "050-exchange-ndr.eml"
    result = CliRunner().invoke(app, ["reply", "explain", str(path)])
    assert result.exit_code == 0, result.output
    assert "RG-prod-7KQ2M9XW4D" in result.stdout
    assert "lena.vogt@contoso.com" in result.stdout


def test_instance_flags_a_foreign_token() -> None:
    path = SAMPLES / "010-outlook-web-html-only-declined.eml"
    result = CliRunner().invoke(
        app, ["reply", "explain", str(path), "--json", "--instance", "prod"]
    )
    assert "token:foreign" in json.loads(result.stdout)["reasons"]


def test_summary_prints_mail_text_literally(tmp_path: Path) -> None:
    path = tmp_path / "markup.eml"
    path.write_bytes(
        b"Subject: Re: [/bold] [RG-prod-7KQ2M9XW4D]\r\n\r\n[Reject] [red]too early[/]\r\n"
    )
    result = CliRunner().invoke(app, ["reply", "explain", str(path)])
    assert result.exit_code == 0, result.output
    assert "[red]too early[/]" in result.stdout
