"""The real daemon as a subprocess: ``Daemon``, a `jobnest serve` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from support.polling import until
from support.ports import free_port

DEADLINE = 20.0  # seconds a daemon may take to start or to get where a test waits for it


class Daemon:
    """A `jobnest serve` subprocess on a free loopback port, with ``home`` for its home,
    ``JOBNEST_GRACE=1`` and ``env`` on top of this process's environment. Waited for until it
    answers, unless not ``wait`` (several can start side by side, then be waited for);
    ``owner`` is how it signs the runs it drives."""

    def __init__(
        self,
        home: Path,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
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
        self.owner = f"{socket.gethostname()}:{self.process.pid}"
        if wait:
            self.wait_up()

    def is_up(self) -> bool:
        assert self.process.poll() is None, self.output.read_text()
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def wait_up(self) -> None:
        """Wait until the daemon answers; fail the test if it exits first."""
        until(self.is_up, DEADLINE, "the daemon did not start")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``, wait for the exit and close the client: the exit code."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.client.close()
        return code

    def close(self) -> None:
        """Kill the daemon if it still runs, and close the client."""
        if self.process.poll() is None:
            self.stop(signal.SIGKILL)
        self.client.close()
