"""The dashboard's web app: the page, its assets, plotly.js from the installed ``plotly`` package, and the
server-sent event stream of the daemon's messages and health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from emoscribe.clients.dashboard.feed import Relay, SubscriberFeed
from emoscribe.clients.dashboard.health import HealthWatch

STATIC = Path(__file__).parent / "static"
KEEP_ALIVE_S = 15.0


def plotly_js() -> Path:
    """The plotly.js bundle the ``plotly`` Python package ships as package data."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the plotly package holds no plotly.min.js; reinstall plotly")
    return path


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    endpoint: str
    topics: Sequence[str] = ("",)
    curve: dict[str, Any] = field(default_factory=dict)
    """The Subscriber's CURVE arguments (``server_key``, ``client_keys``) for a daemon with CURVE on."""
    metrics_url: str | None = None
    scrape_interval_s: float = 2.0
    history: int = 2000
    max_streams: int = 12
    max_points: int = 600


def create_app(settings: DashboardSettings) -> Starlette:
    """The app; the subscriber connects now (a bad endpoint fails here), and reads once the app starts."""
    relay = Relay(settings.history)
    feed = SubscriberFeed(settings.endpoint, settings.topics, settings.curve)
    watch = HealthWatch(settings.metrics_url) if settings.metrics_url else None

    async def scrape_forever() -> None:
        while True:
            summary = await asyncio.to_thread(watch.poll) if watch else {"up": None, "error": "no metrics URL"}
            relay.health({**summary, "lost": feed.lost, "malformed": feed.malformed})
            await asyncio.sleep(settings.scrape_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        app.state.close_pages = lambda: loop.call_soon_threadsafe(relay.close)
        feed.start(loop, relay.message)
        scraper = asyncio.create_task(scrape_forever())
        try:
            yield
        finally:
            scraper.cancel()
            feed.stop()

    async def events(request: Request) -> StreamingResponse:
        queue = relay.attach()

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEP_ALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if event is None:
                        return
                    yield f"event: {event[0]}\ndata: {event[1]}\n\n"
            finally:
                relay.detach(queue)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def config(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "endpoint": settings.endpoint,
                "metrics_url": settings.metrics_url,
                "max_streams": settings.max_streams,
                "max_points": settings.max_points,
            }
        )

    plotly = plotly_js()

    async def page(_: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def plotting(_: Request) -> FileResponse:
        return FileResponse(plotly, media_type="text/javascript")

    routes = [
        Route("/", page),
        Route("/config.json", config),
        Route("/events", events),
        Route("/vendor/plotly.min.js", plotting),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.close_pages = lambda: None  # until the app starts
    return app
