"""The traveller's guidance page: served by the gate process on loopback, driven by server-sent events.

    screen = KioskScreen.from_config(cfg.devices.screen, emit=sink).start()
    screen.url                      # http://127.0.0.1:8480/  (the kiosk browser opens this)
    screen.show("face.blink", "zh-TW")

The page (static/index.html, kiosk.css, kiosk.js) holds no logic of its own: every change on the
gate (a message, the lane state, the traveller's language, the rating offer) becomes one *view*,
a JSON object with everything the page draws, pushed to every open page as an SSE event
(`GET /events`; a page that connects or reconnects gets the current view at once). A tap posts
to the gate and the gate pushes the new view:

    POST /api/language {"lang": "ja"}                      one tap: the rest of the visit in Japanese
    POST /api/display  {"high_contrast": true, "large_text": false}
    POST /api/rating   {"token": "...", "rating": "good"}   204, or 409 {"error": expired|already_rated|unknown}
    GET  /api/view                                          the current view (diagnostics, tests)

Its own thread and event loop (aiohttp), like every driver's port thread: gate logic calls
`show` from anywhere and never waits on a browser. Loopback only (`devices.screen.listen`);
a POST whose Origin is another site is refused. If the page loses the gate (the process died,
the link broke) it shows "out of service" in every language within 3 s, never a stale "proceed".
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from importlib import resources

from aiohttp import web

from core import logs, messages
from core.component import ComponentStatus, EventSink, discard
from drivers.screen import views
from drivers.screen.config import ScreenConfig, loopback_address
from drivers.screen.driver import RATINGS, REST_STATES, RecordingScreen, ScreenError, ScreenMessage, render

log = logs.get("kiosk")

TICK_S = 0.25            # hold and offer expiry are re-evaluated this often
KEEPALIVE_S = 15.0       # an SSE comment line so proxies and the browser keep the stream
MAX_POST_BYTES = 1024
HISTORY = 1000           # messages kept for `ids()` (a long-running gate must not grow without bound)
START_TIMEOUT_S = 5.0


def _static(name: str) -> bytes:
    return (resources.files("drivers.screen") / "static" / name).read_bytes()


class KioskScreen(RecordingScreen):
    """A `Screen` whose display is the kiosk page; keeps the last `HISTORY` messages like
    `RecordingScreen` (so `ids()` works in tests and diagnostics)."""

    name = "screen"

    def __init__(self, host: str = "127.0.0.1", port: int = 8480, *, languages: tuple[str, ...] | None = None,
                 emit: EventSink = discard, rating: str = "cleared", rating_window_s: float = 10.0,
                 hold_s: float = 4.0, high_contrast: bool = False, large_text: bool = False):
        super().__init__(languages=languages, emit=emit, rating=rating, rating_window_s=rating_window_s)
        self.host, self.port = host, port
        self.hold_s = hold_s
        self.defaults = {"high_contrast": high_contrast, "large_text": large_text}
        self.display = dict(self.defaults)
        self.clients = 0
        self.events_sent = 0
        self.seq = 0
        self.view: dict = {}
        self._shown: ScreenMessage | None = None      # on the page now (a welcome may wait behind it)
        self._shown_at = 0.0
        self._asked: ScreenMessage | None = None      # what gate logic asked for last
        self._queues: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: str | None = None

    @classmethod
    def from_config(cls, cfg: ScreenConfig, source: str = "(gate config)", **kw) -> KioskScreen:
        host, port = loopback_address(cfg, source)
        return cls(host, port, languages=cfg.languages, rating=cfg.rating, rating_window_s=cfg.rating_window_s,
                   hold_s=cfg.hold_s, high_contrast=cfg.high_contrast, large_text=cfg.large_text, **kw)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # -- the Screen side (any thread) ---------------------------------------------------------
    def _display(self, msg: ScreenMessage) -> None:
        super()._display(msg)
        with self._lock:
            if len(self.shown) > HISTORY:
                del self.shown[: len(self.shown) - HISTORY]
        self._asked = msg

    def _changed(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._publish)
            except RuntimeError:   # the loop closed between the check and the call
                pass

    def lane_state(self, state: str) -> None:
        if state in REST_STATES:
            with self._state_lock:
                if self._passage_id is not None or state != "idle":
                    self.display = dict(self.defaults)   # the next traveller starts with the gate's defaults
        super().lane_state(state)

    def set_display(self, *, high_contrast: bool | None = None, large_text: bool | None = None) -> None:
        with self._state_lock:
            if high_contrast is not None:
                self.display["high_contrast"] = bool(high_contrast)
            if large_text is not None:
                self.display["large_text"] = bool(large_text)
        self._changed()

    # -- the view ------------------------------------------------------------------------------
    def _on_page(self, now: float) -> ScreenMessage | None:
        """What the page shows now: what gate logic asked for, except that a welcome waits while a
        refusal or warning is younger than `hold_s`, or while the rating is offered."""
        asked, shown = self._asked, self._shown
        if asked is None or asked is shown:
            return shown
        if shown is not None and asked.message_id in views.IDLE_MESSAGES:
            _, tone = views.view_of(shown.message_id)
            if tone in views.HELD_TONES and now - self._shown_at < self.hold_s:
                return shown
            if self.open_offer() is not None:
                return shown
        self._shown, self._shown_at = asked, now
        return asked

    def build_view(self) -> dict:
        """Everything the page draws, as plain JSON (lock held by the caller or not needed)."""
        with self._state_lock:
            now = time.monotonic()
            msg = self._on_page(now)
            lang = self.language()
            if msg is not None and msg is not self._asked and self._chosen is None:
                lang = msg.language     # held past the visit's end: still in the language of whoever reads it
            if msg is not None and msg.language != lang:    # a tap since: the message in the new language
                msg = render(msg.message_id, lang, msg.params)
            mid = msg.message_id if msg else None
            pictogram, tone = views.view_of(mid or "gate.starting")
            view = {
                "state": self.state, "id": mid, "lang": lang, "text": msg.text if msg else "",
                "pictogram": pictogram, "tone": tone,
                "others": [{"lang": code, "text": messages.text(mid, code, **msg.params)}
                           for code in self.languages if code != lang]
                          if mid in views.MULTILINGUAL and not self.knows_language() else [],
                "languages": [{"code": code, "name": messages.language_name(code), "selected": code == lang}
                              for code in self.languages],
                "ui": {key.removeprefix("kiosk."): messages.text(key, lang) for key in views.UI_MESSAGES},
                "display": dict(self.display),
                "rating": None,
            }
            offer = self.open_offer()
            if offer is not None:
                view["rating"] = {"token": offer.token, "rated": offer.rating,
                                  "choices": [{"value": r, "label": messages.text(f"kiosk.rating_{r}", lang)}
                                              for r in RATINGS]}
            return view

    def _publish(self) -> None:
        """On the server loop: a new view goes to every page when it differs from the last."""
        try:
            view = self.build_view()
        except Exception as exc:   # a rendering bug must not stop the page's loop
            log.error("kiosk_view_failed", error=f"{type(exc).__name__}: {exc}")
            return
        if view == {k: v for k, v in self.view.items() if k != "seq"}:
            return
        self.seq += 1
        self.view = {"seq": self.seq, **view}
        data = json.dumps(self.view, ensure_ascii=False)
        for q in list(self._queues):
            if q.full():
                q.get_nowait()     # a view is the whole page: only the newest matters
            q.put_nowait(data)

    # -- component ------------------------------------------------------------------------------
    def start(self) -> KioskScreen:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="kiosk-screen", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            self._error = self._error or "did not start listening"
        if self._error:
            log.error("kiosk_not_served", listen=f"{self.host}:{self.port}", error=self._error)
        else:
            log.info("kiosk_served", url=self.url)
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and self._stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass
        if thread is not None:
            thread.join(5)
        self._thread = None

    def stats(self) -> dict[str, int]:
        return {"shown": len(self.shown), "clients": self.clients, "views_sent": self.events_sent,
                "ratings": self.ratings}

    def status(self) -> ComponentStatus:
        up = self._error is None and self._loop is not None and self._thread is not None
        shown = self._shown.message_id if self._shown else "nothing"
        detail = (f"{self.url}: {self.clients} page(s), showing {shown}" if up
                  else f"kiosk page not served on {self.host}:{self.port}: {self._error or 'not started'}")
        return ComponentStatus(self.name, up, detail, self.stats())

    # -- the server (its own thread and loop) -------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            log.error("kiosk_server_failed", error=self._error)
        finally:
            self._loop = None
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=MAX_POST_BYTES, middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/kiosk.css", self._asset)
        app.router.add_get("/kiosk.js", self._asset)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/view", self._view)
        app.router.add_post("/api/language", self._language)
        app.router.add_post("/api/display", self._display_post)
        app.router.add_post("/api/rating", self._rating)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            if self.port == 0:
                self.port = site._server.sockets[0].getsockname()[1]
            self._loop = asyncio.get_running_loop()
            self._publish()
            self._started.set()
            while not self._stopping.is_set():
                try:
                    await asyncio.wait_for(self._stopping.wait(), TICK_S)
                except asyncio.TimeoutError:
                    self._publish()
        finally:
            self._loop = None
            await runner.cleanup()

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin.split("://", 1)[-1] != request.host:
                return web.json_response({"error": "cross_origin"}, status=403)
        try:
            return await handler(request)
        except ScreenError as exc:
            return web.json_response({"error": "bad_request", "detail": str(exc)}, status=400)

    async def _json(self, request: web.Request) -> dict:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ScreenError("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ScreenError("the body must be a JSON object")
        return body

    async def _index(self, request: web.Request) -> web.Response:
        # The page knows, before any event, what to say if it never hears from the gate.
        offline = {code: messages.text("gate.out_of_service", code) for code in self.languages}
        html = _static("index.html").decode("utf-8")
        html = html.replace("{{lang}}", self.languages[0]).replace(
            "{{offline}}", json.dumps(offline, ensure_ascii=False).replace("</", "<\\/"))
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.path.lstrip("/")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return web.Response(body=_static(name), content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _view(self, request: web.Request) -> web.Response:
        return web.json_response(self.view, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        self.clients += 1
        try:
            await resp.write(b"retry: 1000\n\n")
            if self.view:
                await self._send(resp, json.dumps(self.view, ensure_ascii=False))
            while not self._stopping.is_set():
                getter = asyncio.ensure_future(queue.get())
                stop = asyncio.ensure_future(self._stopping.wait())
                done, _ = await asyncio.wait({getter, stop}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if getter in done:
                    await self._send(resp, getter.result())
                else:
                    getter.cancel()
                    if not self._stopping.is_set():
                        await resp.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
            self.clients -= 1
        return resp

    async def _send(self, resp: web.StreamResponse, data: str) -> None:
        seq = json.loads(data).get("seq", 0)
        await resp.write(f"id: {seq}\ndata: {data}\n\n".encode("utf-8"))
        self.events_sent += 1

    async def _language(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self.choose_language(str(body.get("lang")))
        return web.Response(status=204)

    async def _display_post(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        flags = {k: body[k] for k in ("high_contrast", "large_text") if k in body}
        if not flags or not all(isinstance(v, bool) for v in flags.values()):
            raise ScreenError("expected high_contrast and/or large_text, true or false")
        self.set_display(**flags)
        return web.Response(status=204)

    async def _rating(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        result = self.rate(str(body.get("token", "")), str(body.get("rating")))
        if result != "recorded":
            return web.json_response({"error": result}, status=409)
        return web.Response(status=204)


def build_screen(cfg: ScreenConfig, source: str = "(gate config)", **kw) -> RecordingScreen:
    """The screen `devices.screen` describes."""
    if cfg.driver == "kiosk":
        return KioskScreen.from_config(cfg, source, **kw)
    return RecordingScreen(languages=cfg.languages, rating=cfg.rating, rating_window_s=cfg.rating_window_s, **kw)



