"""``replygate demo --check``: the README's demo, headless, as a user would run it."""

from __future__ import annotations

import subprocess
import sys


def test_demo_check_closes_a_request_through_a_reply() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "replygate", "demo", "--check"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "approved" in result.stdout
