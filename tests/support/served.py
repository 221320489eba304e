"""The daemon's real app over a real store, for tests that talk HTTP to it: in process over
ASGI (``in_process``), or served by uvicorn on a free loopback port in a thread with its
own event loop (``ServedDaemon``), for clients that need a URL, such as the CLI."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import uvicorn

from jobnest.config import Settings
from jobnest.daemon import Daemon
from jobnest.store.sql import SQLStore
from jobnest.web import create_app
from jobnest.web.auth import install_auth
from support.polling import until
from support.ports import free_port

STARTUP = 20.0  # seconds uvicorn may take to listen, on a busy machine


@asynccontextmanager
async def in_process(
    settings: Settings, workdir: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Daemon]]:
    """A client of the daemon's app (no authentication) over ASGI, and that daemon; the
    daemon is closed after."""
    store = SQLStore.open(settings.database_url)
    daemon = Daemon(store, settings, workdir=str(workdir), zone=ZoneInfo("UTC"))
    transport = httpx.ASGITransport(app=create_app(daemon))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://jobnest") as client:
            yield client, daemon
    finally:
        await daemon.close()
        store.close()


class ServedDaemon:
    """The daemon's app, with its authentication when ``auth``, served by uvicorn on a free
    port while in a ``with`` block; its store is only ever used from the server's thread."""

    def __init__(self, settings: Settings, workdir: Path, *, auth: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        self.workdir = workdir
        self.auth = auth
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        store = SQLStore.open(self.settings.database_url)
        daemon = Daemon(store, self.settings, workdir=str(self.workdir), zone=ZoneInfo("UTC"))
        app = create_app(daemon)
        if self.auth:
            install_auth(app, store, self.settings)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        try:
            await self.server.serve()
        finally:
            await daemon.close()
            store.close()

    def _started(self) -> bool:
        assert self.thread.is_alive(), "the server's thread ended"
        return self.server is not None and self.server.started

    def __enter__(self) -> ServedDaemon:
        self.thread.start()
        until(self._started, STARTUP, "the server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(timeout=20)
