"""The pipeline CLI's HTTP client: server, token and CA from options or the environment."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from replygate import __version__


class ApiError(Exception):
    """The server answered with a problem (or something that is not our API)."""

    def __init__(self, status: int, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.fix = fix

    @property
    def transient(self) -> bool:
        return self.status in (429, 502, 503, 504) or self.status >= 500


@dataclass
class ApiClient:
    url: str
    token: str
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.ca_file))
        self._http = httpx.Client(
            base_url=self.url.rstrip("/"),
            verify=verify,
            timeout=httpx.Timeout(30.0, connect=10.0),
            headers={
                "Authorization": f"Bearer {self.token}",
                "User-Agent": f"replygate-cli/{__version__}",
                "Accept": "application/json",
            },
        )

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Status and JSON body; ``ApiError`` for an error answer, ``httpx.TransportError``
        when the server cannot be reached."""
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=10.0)
        answer = self._http.request(
            method, path, json=json, params=params, headers=headers, **extra
        )
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code >= 400 or not isinstance(body, dict):
            detail = body.get("detail") if isinstance(body, dict) else None
            fix = body.get("fix") if isinstance(body, dict) else None
            raise ApiError(
                answer.status_code,
                str(detail or f"{self.url} answered {answer.status_code} (is it replygate?)"),
                str(fix or ""),
            )
        return answer.status_code, body
