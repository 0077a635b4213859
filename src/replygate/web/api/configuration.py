"""``/api/v1/config/test``: Test Email Configuration, as the CLI and the console run it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from replygate.services.account_ports import Scope
from replygate.web.api.common import container_of, problems
from replygate.web.auth import Principal, require_scope

router = APIRouter(prefix="/api/v1/config", tags=["configuration"])
Writer = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_WRITE))]


class ConfigTestRequest(BaseModel):
    to: str | None = Field(None, description="Send the test email to this address.")
    loopback: bool = Field(True, description="Send and read back an approval-format mail.")
    out_of_reach: str | None = Field(
        None, description="App-only: a mailbox the application must NOT reach (proves scoping)."
    )


class ConfigTestStep(BaseModel):
    name: str
    status: str = Field(description="passed, failed or skipped")
    detail: str
    fix: str


class ConfigTestReport(BaseModel):
    passed: bool = Field(
        description="No step failed (a step skipped because it was not asked for does not count)."
    )
    steps: list[ConfigTestStep]


@router.post(
    "/test",
    response_model=ConfigTestReport,
    responses=problems(400, 401, 403, 422),
    description="Token, test email, reply folder and loop-back, each passed, failed or "
    "skipped with what happened and how to fix it. Takes up to a minute with loop-back.",
)
def config_test(body: ConfigTestRequest, request: Request, _: Writer) -> dict[str, Any]:
    from replygate.configtest import run_config_test
    from replygate.services.requesting import valid_address

    to = valid_address(body.to, "to") if body.to else None
    report = run_config_test(
        container_of(request), send_to=to, loopback=body.loopback, out_of_reach=body.out_of_reach
    )
    return {"passed": report.passed, "steps": [asdict(step) for step in report.steps]}
