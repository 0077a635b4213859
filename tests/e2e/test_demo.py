"""``replygate demo --check``: the README's demo, headless, as a user would run it."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys

import httpx

from replygate.demo import request_state, running_demo
from replygate.domain.model import RequestState


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


def test_in_the_demo_an_approver_signs_in_with_microsoft_and_approves_on_the_web() -> None:
    with running_demo(port=0, emulator_port=0) as demo:
        context = ssl.create_default_context(cafile=str(demo.tls_cert))
        with (
            httpx.Client(base_url=demo.console_url, verify=context) as console,
            demo.emulator.browser() as microsoft,
        ):
            assert "Sign in with Microsoft" in console.get("/login").text
            started = console.get("/login/microsoft", follow_redirects=False)
            assert started.status_code == 302
            answer = microsoft.authorize(started.headers["location"], account="bob@contoso.test")
            assert answer.pages == ["account-picker"]  # never a silent sign-in
            posted = console.post(answer.url, data=answer.params, follow_redirects=False)
            signed_in = console.get(posted.headers["location"], follow_redirects=False)
            assert signed_in.status_code == 303, signed_in.text
            target = demo.request_ids[0]
            page = console.get(f"/requests/{target}")
            assert 'bob <span class="role">(viewer)</span>' in page.text
            decided = console.post(
                f"/requests/{target}/decide",
                data={"verdict": "approve", "comment": "", "csrf_token": csrf(page.text)},
                follow_redirects=False,
            )
            assert decided.status_code == 303, decided.text
        assert request_state(demo, target) is RequestState.APPROVED


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)
