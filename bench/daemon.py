"""A ``jobnest serve`` process for the bench: on a free loopback port, answered, then stopped.

``jobnest_serve`` starts the daemon with a fresh data directory (embedded SQLite) and the
given job files, waits until ``/healthz`` answers and, on the way out, stops it with SIGTERM
as an operator would: runs still in progress are stopped and their tasks signalled. The
process part, ``served``, takes any HTTP server's command line, so that a baseline standing
in for the daemon is started, awaited and stopped the very same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.sides import BenchError, scratch

UP_SECONDS = 60.0  # for a server to answer on a busy machine
STOP_SECONDS = 30.0  # for it to exit after SIGTERM (the daemon's runs have a grace period)
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    log: Path  # its stdout and stderr


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def jobnest_serve(root: Path, jobs: Path, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``jobnest serve --jobs JOBS`` with a data directory made under ``root``.

    The daemon sees none of this process's ``JOBNEST_*`` variables, only ``JOBNEST_HOME``
    and ``env``; its working directory, where its runs' tasks start, is ``root``.
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JOBNEST_")}
    environment |= {"JOBNEST_HOME": str(scratch(root, "home-")), **(env or {})}
    argv = [sys.executable, "-m", "jobnest", "serve", "--port", str(port), "--jobs", str(jobs)]
    with served(argv, port, "/healthz", cwd=root, env=environment) as server:
        yield server


@contextmanager
def served(
    argv: list[str], port: int, ready: str, *, cwd: Path, env: Mapping[str, str]
) -> Iterator[Server]:
    """The server ``argv`` starts on ``port``, once a GET of ``ready`` answers 200.

    Stopped with SIGTERM at the end (killed if it outlives ``STOP_SECONDS``): exiting with
    another code than 0 or the SIGTERM's is an error, as is not answering in ``UP_SECONDS``.
    """
    log = cwd / f"server-{port}.log"
    server = Server(f"http://127.0.0.1:{port}", log)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        _wait_until_up(process, server, ready)
        yield server
    except BaseException:
        _stop(process)
        raise
    code = _stop(process)
    if code not in (0, -signal.SIGTERM):  # uvicorn's own handler re-raises the signal it got
        raise BenchError(f"the server exited {code} on SIGTERM: {_tail(log)}")


def _wait_until_up(process: subprocess.Popen[bytes], server: Server, ready: str) -> None:
    deadline = time.monotonic() + UP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited {process.returncode}: {_tail(server.log)}")
        if _answers(server.url + ready):
            return
        time.sleep(POLL_SECONDS)
    raise BenchError(f"the server did not answer {server.url}{ready} in {UP_SECONDS:g} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it is still there after ``STOP_SECONDS``: its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise BenchError(f"the server was still running {STOP_SECONDS:g} s after SIGTERM") from None


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]
