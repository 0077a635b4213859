"""``GET /healthz``: is replygate able to do its job, and if not, what is wrong.

A check is any callable taking the ``Container`` and returning a ``CheckResult``; they are
kept in a ``HealthRegistry`` (see ``app.create_app``). The answer is ``failing`` (HTTP 503)
when a check fails, ``degraded`` (200) when one warns, else ``ok``. Checks must be quick and
must not put secrets in ``detail``: the endpoint needs no sign-in, for load balancers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from replygate import __version__
from replygate.db import migrate

if TYPE_CHECKING:
    from replygate.bootstrap import Container

log = logging.getLogger(__name__)

CheckStatus = Literal["ok", "warning", "failing"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: CheckStatus
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


HealthCheck = Callable[["Container"], CheckResult]


class HealthRegistry:
    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {}

    def register(self, name: str, check: HealthCheck) -> None:
        """Add a check; registering a name again replaces the earlier check."""
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    def run(self, container: Container) -> list[CheckResult]:
        return [self._run_one(name, check, container) for name, check in self._checks.items()]

    @staticmethod
    def _run_one(name: str, check: HealthCheck, container: Container) -> CheckResult:
        try:
            return check(container)
        except Exception as error:  # one broken check must not hide the others' answers
            log.exception("health check %s raised %s", name, type(error).__name__)
            return CheckResult(name, "failing", f"the check itself failed ({type(error).__name__})")


def overall(results: list[CheckResult]) -> Literal["ok", "degraded", "failing"]:
    statuses = {result.status for result in results}
    if "failing" in statuses:
        return "failing"
    return "degraded" if "warning" in statuses else "ok"


@cache
def _head_revision(engine: Engine) -> str | None:
    return migrate.head_revision(engine)  # reads the migration scripts: once per engine


def database_check(container: Container) -> CheckResult:
    """The database answers, and its schema is the one this version needs."""
    try:
        with container.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            # Read directly: Alembic's MigrationContext logs at INFO on every call.
            current = connection.scalar(text("SELECT version_num FROM alembic_version"))
    except (OperationalError, ProgrammingError) as error:
        if "alembic_version" in str(error):
            current = None  # reachable, but never upgraded
        else:
            return _unreachable(error)
    except SQLAlchemyError as error:
        return _unreachable(error)
    head = _head_revision(container.engine)
    data = {"backend": container.engine.dialect.name, "revision": current, "needed": head}
    if current != head:
        detail = f"schema at {current or 'nothing'}, needs {head}: run `replygate db upgrade`"
        return CheckResult("database", "failing", detail, data)
    return CheckResult("database", "ok", "", data)


def _unreachable(error: SQLAlchemyError) -> CheckResult:
    reason = type(getattr(error, "orig", None) or error).__name__  # no URL, no host names
    return CheckResult("database", "failing", f"the database cannot be reached ({reason})")


router = APIRouter(tags=["health"])


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", summary="Health of replygate")
def healthz(request: Request) -> JSONResponse:
    registry: HealthRegistry = request.state.health
    results = registry.run(request.state.container)
    status = overall(results)
    database = next((r for r in results if r.name == "database"), None)
    body = {
        "status": status,
        "version": __version__,
        "database": asdict(database) if database is not None else None,
        "checks": [asdict(result) for result in results],
    }
    return JSONResponse(
        body,
        status_code=503 if status == "failing" else 200,
        headers={"Cache-Control": "no-store"},
    )
