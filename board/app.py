"""The board's web application (Starlette): pages, JSON API, live push (server-sent events), sign-in.

Security (docs/board.md): sessions are Starlette's signed cookies (HttpOnly, SameSite=Strict,
Secure over TLS, expiring after `session_hours`); every state-changing request carries the
session's CSRF token in `X-CSRF-Token`; failed sign-ins are throttled per client and per name;
the acknowledging name is always the signed-in user's; device-supplied text is escaped by Jinja2
on the server and written with `textContent` by board.js, never parsed as HTML.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from board.auth import LoginThrottle
from board.state import ALARMS, OTHER, BoardState
from board.text import pick_language, ui_strings
from board.users import Role, UsersFile

HERE = Path(__file__).parent
HEARTBEAT_S = 15.0  # an SSE comment keeps proxies from closing an idle stream
MAX_NOTE = 500  # the gateway's own limit applies too; this only stops a runaway form


@dataclass(frozen=True, slots=True)
class BoardConfig:
    public_read: bool
    session_secret: str
    session_hours: float
    tls: bool
    prefix: str


@dataclass(slots=True)
class Board:
    config: BoardConfig
    state: BoardState
    users: UsersFile
    snapshot: Callable[[], dict[str, Any]]  # everything the page shows (board/view.py)
    publish: Callable[[str, bytes], Awaitable[None]]  # MQTT publish (the board's own session)
    throttle: LoginThrottle


def build_app(board: Board) -> Starlette:
    templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on for .html

    def user_of(request: Request) -> dict[str, str] | None:
        name, role = request.session.get("user"), request.session.get("role")
        return {"name": name, "role": role} if isinstance(name, str) and isinstance(role, str) else None

    def may_read(request: Request) -> bool:
        return board.config.public_read or user_of(request) is not None

    def lang_of(request: Request) -> str:
        return pick_language(request.query_params.get("lang"), request.cookies.get("lang"),
                             request.headers.get("accept-language"))  # fmt: skip

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        lang = lang_of(request)
        csrf = request.session.setdefault("csrf", secrets.token_urlsafe(32))
        context = {"t": ui_strings(lang), "lang": lang, "csrf": csrf, "user": user_of(request), **ctx}
        resp = templates.TemplateResponse(request, name, context, status_code=status)
        if "lang" in request.query_params:
            resp.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict", secure=board.config.tls)
        return resp

    async def index(request: Request) -> Response:
        if not may_read(request):
            return RedirectResponse("/login", status_code=303)
        return page(request, "board.html", ui=orjson.dumps(ui_strings(lang_of(request))).decode())

    async def login_form(request: Request) -> Response:
        return page(request, "login.html")

    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:1024]
        client = request.client.host if request.client else "?"
        wait_s = board.throttle.blocked_for(client, name)
        if wait_s > 0:
            return page(request, "login.html", status=429, error="too_many", retry_after=int(wait_s) + 1)
        user = await asyncio.to_thread(board.users.verify, name, password)
        if user is None:
            board.throttle.failed(client, name)
            return page(request, "login.html", status=401, error="wrong_login")
        board.throttle.succeeded(client, name)
        request.session.clear()  # a new session id on sign-in (no fixation)
        request.session.update(user=user.name, role=str(user.role), csrf=secrets.token_urlsafe(32))
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        if not csrf_ok(request, (await request.form()).get("csrf")):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def healthz(_request: Request) -> Response:
        up = board.state.connected
        return JSONResponse({"status": "ok" if up else "unhealthy", "mqtt": "connected" if up else "disconnected"},
                            status_code=200 if up else 503)  # fmt: skip

    async def api_alarms(request: Request) -> Response:
        if not may_read(request):
            return JSONResponse({"error": "sign in first (POST /login)"}, status_code=401)
        alarms = board.state.active_alarms(request.query_params.get("site"))
        return JSONResponse([{k: a.get(k) for k in API_FIELDS} for a in alarms])

    async def api_board(request: Request) -> Response:
        if not may_read(request):
            return JSONResponse({"error": "sign in first (POST /login)"}, status_code=401)
        return Response(orjson.dumps(board.snapshot()), media_type="application/json")

    async def stream(request: Request) -> Response:
        if not may_read(request):
            return JSONResponse({"error": "sign in first (POST /login)"}, status_code=401)
        return StreamingResponse(_events(request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip

    async def _events(request: Request) -> AsyncIterator[bytes]:
        """The whole snapshot first; then on each change the alarms alone at once (small, fast to
        render), followed by the whole snapshot when anything else changed too."""
        q = board.state.listen()
        try:
            yield b"event: board\ndata: " + orjson.dumps(board.snapshot()) + b"\n\n"
            while not await request.is_disconnected():
                try:
                    await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                kinds = board.state.take_changes(q)
                if ALARMS in kinds:
                    yield b"event: alarms\ndata: " + orjson.dumps(alarms_only(board.state)) + b"\n\n"
                if OTHER in kinds:
                    yield b"event: board\ndata: " + orjson.dumps(board.snapshot()) + b"\n\n"
        finally:
            board.state.unlisten(q)

    def csrf_ok(request: Request, token: object) -> bool:
        expected = request.session.get("csrf")
        return isinstance(expected, str) and isinstance(token, str) and hmac.compare_digest(expected, token)

    async def ack(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return JSONResponse({"error": "sign in first (POST /login)"}, status_code=401)
        if not csrf_ok(request, request.headers.get("x-csrf-token")):
            return JSONResponse({"error": "missing or wrong CSRF token (X-CSRF-Token)"}, status_code=403)
        if user["role"] != str(Role.OFFICER):
            return JSONResponse({"error": f"{user['name']} is a viewer: only officers acknowledge"}, status_code=403)
        alert_id = request.path_params["alert_id"]
        alarm = board.state.alarm_by_id(alert_id)
        if alarm is None:
            return JSONResponse({"error": f"no active alarm {alert_id} (unknown or already cleared)"}, status_code=404)
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return JSONResponse({"error": 'body must be JSON: {"note": "..."}'}, status_code=400)
        note = body.get("note") if isinstance(body, dict) else None
        if note is not None and not isinstance(note, str):
            return JSONResponse({"error": "note must be a string"}, status_code=400)
        # `t`: when the officer acknowledged; `ack_id`: a retried request is applied once (docs/spec-changes.md)
        msg = {"alert_id": alert_id, "by": user["name"], "note": (note or "").strip()[:MAX_NOTE] or None,
               "t": time.time(), "ack_id": secrets.token_hex(12)}  # fmt: skip
        try:
            await board.publish(f"{board.config.prefix}/{alarm['site']}/ack", orjson.dumps(msg))
        except ConnectionError as exc:
            return JSONResponse({"error": f"not sent: {exc}"}, status_code=503)
        return JSONResponse({"status": "sent", "alert_id": alert_id, "by": user["name"]}, status_code=202)

    routes = [
        Route("/", index),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/api/alarms", api_alarms),
        Route("/api/board", api_board),
        Route("/api/stream", stream),
        Route("/api/alarms/{alert_id:str}/ack", ack, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    session = Middleware(
        SessionMiddleware, secret_key=board.config.session_secret, session_cookie="oshmon_board",
        max_age=int(board.config.session_hours * 3600), same_site="strict", https_only=board.config.tls,
    )  # fmt: skip
    return Starlette(routes=routes, middleware=[session, Middleware(_SecurityHeaders)])


def alarms_only(state: BoardState) -> dict[str, Any]:
    return {"alarms": state.active_alarms(), "connected": state.connected,
            "disconnected_since_s": state.disconnected_since}  # fmt: skip


API_FIELDS = (
    "alert_id", "site", "zone", "device", "worker", "hazard", "rule", "severity", "value", "threshold",
    "unit", "since", "acknowledged_by", "action", "limit_source", "message",
)  # fmt: skip


class _SecurityHeaders:
    """No framing, no sniffing, and a content security policy that allows only the board's own
    assets: the control room has no internet, and nothing a device sends may run as script."""

    HEADERS = (
        (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    )  # fmt: skip

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
