"""The ASGI layer in front of every route, and the metrics it feeds."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest

from .. import contract
from ..bundle import Bundle
from .logs import access_log

API_KEY_HEADER = "X-API-Key"
# Routes named in metrics and logs; any other path counts as "other", so scanners cannot blow up
# the number of Prometheus series.
ROUTES = frozenset(
    {"/", "/health", "/ready", "/metadata", "/metrics", contract.ROUTE, "/docs", "/openapi.json"}
)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    """Prometheus metrics in a registry of the app's own (one per worker process)."""

    def __init__(self, trained: Bundle) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to answer a request", ["route"], registry=self.registry
        )
        self.rows = Counter("predicted_rows", "Records predicted", registry=self.registry)
        self.unlogged = Counter(
            "prediction_log_dropped_rows", "Predicted rows the log could not take", registry=self.registry
        )
        self.unknown = Counter(
            "unknown_categories", "Category values the model never saw", ["feature"], registry=self.registry
        )
        info = Info("model", "The served model", registry=self.registry)
        info.info({"version": trained.version, "framework": str(trained.metadata["framework"])})

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Guard:
    """The ASGI layer in front of every route: content type, body size, access log, metrics.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which would add a task and a stream per
    request. The body is read here (at most ``max_body`` bytes) and replayed to the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        metrics: Metrics,
        body_paths: frozenset[str],
        api_key: str | None = None,
        guarded_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.body_paths = body_paths  # the routes that take a body; the router answers all others
        # With a key, these routes refuse a request before its body is even read.
        self.api_key = api_key.encode() if api_key else None
        self.guarded_paths = guarded_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.api_key is not None and scope["path"] in self.guarded_paths and not self._key_ok(scope):
                refused = refuse(401, "missing or wrong API key")
                refused.headers["WWW-Authenticate"] = "ApiKey"
                await refused(scope, receive, send_status)
                return
            if scope["method"] == "POST" and scope["path"] in self.body_paths:
                refusal, receive = await self._read_body(scope, receive)
                if refusal is not None:
                    await refusal(scope, receive, send_status)
                    return
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _key_ok(self, scope: Scope) -> bool:
        sent = dict(scope["headers"]).get(API_KEY_HEADER.lower().encode())
        return sent is not None and self.api_key is not None and hmac.compare_digest(sent, self.api_key)

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type.decode("latin-1") not in contract.MEDIA_TYPES:
            return refuse(415, f"send the body as {' or '.join(sorted(contract.MEDIA_TYPES))}"), receive
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            return refuse(413, f"request body larger than {self.max_body} bytes"), receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return refuse(400, "client disconnected"), receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return refuse(413, f"request body larger than {self.max_body} bytes"), receive
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return None, replay

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        path = scope["path"]
        route = path if path in ROUTES else "other"
        self.metrics.requests.labels(scope["method"], route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            fields = {
                "method": scope["method"],
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "client": client[0] if client else None,
            }
            access_log.info("request", extra={"fields": fields})


def refuse(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A refusal worded as FastAPI words one: a JSON object with its ``detail`` (a message, or the
    list of what is wrong with each field)."""
    return Response(
        orjson.dumps({"detail": detail}), status_code=status, media_type="application/json", headers=headers
    )
