"""The real daemon as a subprocess: ``Daemon``, a `jobnest serve` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(check: Callable[[], Any], deadline: float = 20.0) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


class Daemon:
    """A `jobnest serve` subprocess on a free loopback port."""

    def __init__(
        self, home: Path, workdir: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "JOBNEST_HOME": str(home), "JOBNEST_GRACE": "1", **(env or {})}
        self.output = home.parent / f"daemon-{self.port}.log"
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobnest", "serve", "--port", str(self.port), *args],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=self.url, timeout=10)
        poll(self.is_up)

    def is_up(self) -> bool:
        assert self.process.poll() is None, self.output.read_text()
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.client.close()
        return code
