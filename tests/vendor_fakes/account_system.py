"""A strict local account system receiving signed instructions: an aiohttp app on 127.0.0.1.

It verifies what `incident.adapters.vendors.account_webhook` documents for receivers, as a
careful receiver would: `X-Incident-Signature: t=<unix>,v1=<hex>` present and well formed,
`t` within the replay window of its own clock, the HMAC-SHA256 of `"<t>." + raw body` under
the shared secret matching in constant time (else 401); `Content-Type: application/json`
and a JSON object body (else 415 / 400); an `Idempotency-Key` header naming the body's key
(else 400). Instructions are kept once per key (`instructions`); a repeated key is answered
200 again and counted in `duplicates`. Faults are scripted: 429 with Retry-After, 5xx, a
hang (no answer until the client gives up), and a dropped connection after the instruction
took effect.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from incident.clock import Clock

REPLAY_WINDOW = 300.0  # seconds, as the adapter documents


@dataclass
class Fault:
    kind: str  # "429", "500", "hang", "drop_after"
    retry_after: str | None = None
    seconds: float = 0.0


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int = 0
    problem: str = ""


@dataclass
class FakeAccountSystem:
    secret: str
    clock: Clock
    instructions: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)
    requests: list[Received] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/instructions"

    def rate_limit(self, *, retry_after: str = "1") -> None:
        self.faults.append(Fault("429", retry_after=retry_after))

    def fail(self, times: int = 1) -> None:
        self.faults.extend(Fault("500") for _ in range(times))

    def hang(self, *, seconds: float) -> None:
        """The next request is answered `seconds` late (after the client gave up): not taken."""
        self.faults.append(Fault("hang", seconds=seconds))

    def drop_after_taking_effect(self) -> None:
        """The next request is carried out, then the connection is cut without an answer."""
        self.faults.append(Fault("drop_after"))

    async def __aenter__(self) -> FakeAccountSystem:
        app = web.Application()
        app.router.add_post("/instructions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Received(dict(request.headers), await request.read())
        self.requests.append(seen)
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.kind == "429":
            return self._answer(seen, 429, "rate limited", {"Retry-After": fault.retry_after or ""})
        if fault is not None and fault.kind == "500":
            return self._answer(seen, 500, "scripted")
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return self._answer(seen, 503, "answered too late")
        status, problem = self._verify(seen)
        if status != 200:
            return self._answer(seen, status, problem)
        self._take(seen)
        if fault is not None and fault.kind == "drop_after":
            assert request.transport is not None
            request.transport.close()
            seen.status = -1
            return web.Response(status=200)
        return self._answer(seen, 200, "")

    def _verify(self, seen: Received) -> tuple[int, str]:
        signature = seen.headers.get("X-Incident-Signature", "")
        fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
        timestamp, given = fields.get("t", ""), fields.get("v1", "")
        if not timestamp.isdigit() or not given:
            return 401, "missing or malformed signature"
        if abs(self.clock.now().timestamp() - int(timestamp)) > REPLAY_WINDOW:
            return 401, "signature outside the replay window"
        expected = hmac.new(
            self.secret.encode(), f"{timestamp}.".encode() + seen.body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, given):
            return 401, "bad signature"
        if seen.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return 415, "JSON only"
        try:
            body = json.loads(seen.body)
        except ValueError:
            return 400, "not JSON"
        key = seen.headers.get("Idempotency-Key", "")
        if not isinstance(body, dict) or not key or body.get("key") != key:
            return 400, "an Idempotency-Key naming the body's key is required"
        return 200, ""

    def _take(self, seen: Received) -> None:
        key = seen.headers["Idempotency-Key"]
        if key in self.instructions:
            self.duplicates[key] += 1
        else:
            self.instructions[key] = json.loads(seen.body)

    @staticmethod
    def _answer(
        seen: Received, status: int, problem: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        seen.status, seen.problem = status, problem
        return web.json_response(
            {"error": problem} if problem else {"ok": True}, status=status, headers=headers
        )
