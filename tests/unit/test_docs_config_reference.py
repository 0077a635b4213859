"""docs/operations.md carries the settings table generated from the settings model."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from replygate.cli.config_reference import (
    BEGIN_MARKER,
    END_MARKER,
    render_reference,
    replace_between_markers,
)
from replygate.cli.main import app
from replygate.config import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_operations_md_holds_the_generated_table() -> None:
    document = OPERATIONS.read_text(encoding="utf-8")
    assert BEGIN_MARKER in document
    assert END_MARKER in document
    expected = replace_between_markers(document, render_reference())
    assert document == expected, (
        "docs/operations.md's settings table differs from the settings model: paste the "
        "output of `replygate config reference` between the config-reference markers"
    )


def test_every_setting_has_a_row_with_its_variable_and_description() -> None:
    table = render_reference()
    for name, field in Settings.model_fields.items():
        assert f"`REPLYGATE_{name.upper()}`" in table
        assert field.description, f"{name} has no description to document"


def test_the_cli_prints_the_same_table() -> None:
    result = CliRunner().invoke(app, ["config", "reference"])
    assert result.exit_code == 0, result.output
    assert result.output == render_reference()
