"""An httpx MockTransport that answers from a list of scripted responses and records calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from replygate.graph.client import Budget, GraphClient


def graph_error(status: int, code: str, message: str = "", **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message or code, "innerError": {"request-id": "r1"}}}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests with `handler(request)`, or pops scripted responses in order."""

    def __init__(
        self, *responses: httpx.Response, handler: Callable[..., httpx.Response] | None = None
    ):
        self.responses = list(responses)
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            if self.handler is None:
                return self.responses.pop(0)
        return self.handler(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(
    script: Script, *, budget: Budget | None = None, user: str | None = "svc@contoso.test"
) -> tuple[GraphClient, Sleeps]:
    sleeps = Sleeps()
    client = GraphClient(
        "https://graph.example.test",
        transport=httpx.MockTransport(script),
        budget=budget,
        sleeper=sleeps,
        jitter=lambda: 1.0,
        acting_user=user,
    )
    return client, sleeps
