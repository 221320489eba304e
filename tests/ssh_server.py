"""A real OpenSSH server for the tests, on a free loopback port, run by a user who is not root.

``/usr/sbin/sshd -D -e -f CONFIG`` with generated host and user keys, key authentication only,
``UsePAM no`` and ``StrictModes no``. Run as root, the tests start it as the user
``jobnest-ssh`` (created with ``useradd`` when missing), so that the remote side of a task is
another user than the test itself, as it would be on a real host; run as anybody else, the tests
start it as themselves (an unprivileged sshd logs in only its own user).

Everything the server reads lives in its own folder (``SSHServer.base``), owned by that user;
``workdir()`` makes folders there where its tasks may write. ``client_config`` is an OpenSSH
client config naming the server ``testhost`` (and ``otherhost``, the same server under another
name); ``known_hosts`` holds its host key as ``ssh-keyscan`` would write it.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

SSHD = "/usr/sbin/sshd"
TEST_USER = "jobnest-ssh"
ALIAS = "testhost"
OTHER_ALIAS = "otherhost"
DEADLINE = 10.0


@dataclass
class SSHServer:
    base: Path
    user: pwd.struct_passwd
    port: int
    host_key: asyncssh.SSHKey
    process: subprocess.Popen[bytes] | None = None
    workdirs: int = field(default=0)

    @property
    def user_key(self) -> Path:
        return self.base / "user_key"

    @property
    def client_config(self) -> Path:
        return self.base / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.base / "known_hosts"

    @property
    def log(self) -> Path:
        return self.base / "sshd.log"

    def workdir(self) -> Path:
        """A new folder that the server's user owns: tasks may write there."""
        self.workdirs += 1
        path = self.base / f"work{self.workdirs}"
        path.mkdir()
        _own(path, self.user)
        return path

    def known_line(self, key: asyncssh.SSHKey | None = None) -> str:
        public = (key or self.host_key).export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {public}\n"

    def start(self) -> None:
        """Start sshd and wait until it listens; raises if it does not."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.base / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                **_as_user(self.user),
            )
        deadline = time.monotonic() + DEADLINE
        while b"Server listening" not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {self.log.read_text()}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=DEADLINE)

    def sessions(self) -> list[int]:
        """Pids of the per-connection sshd processes (``sshd: USER [priv]``, ``USER@notty``)."""
        assert self.process is not None
        return [pid for pid in _descendants(self.process.pid) if _cmdline(pid).startswith("sshd: ")]


def make_server(root: Path) -> SSHServer:
    """A server with fresh keys under a new folder beside ``root``, not yet started."""
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: apt-get install openssh-server (as .ci/run does)")
    user = _server_user()
    base = Path(tempfile.mkdtemp(prefix="jobnest-sshd-", dir=root))
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    server = SSHServer(base, user, _free_port(), host_key)
    host_key.write_private_key(str(base / "host_key"))
    user_key.write_private_key(str(server.user_key))
    user_key.write_public_key(str(base / "authorized_keys"))
    (base / "sshd_config").write_text(_sshd_config(server))
    server.client_config.write_text(_client_config(server))
    server.known_hosts.write_text(server.known_line())
    for key in (base / "host_key", server.user_key):
        key.chmod(0o600)
    for path in (base, base / "host_key", base / "authorized_keys", base / "sshd_config"):
        _own(path, user)
    return server


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """One sshd for the whole session: tests must leave it as they found it."""
    yield from _serve(tmp_path_factory.getbasetemp())


@pytest.fixture
def fresh_ssh_server(tmp_path: Path) -> Iterator[SSHServer]:
    """An sshd of the test's own, which it may stop, or whose keys it may change."""
    yield from _serve(tmp_path)


def _serve(root: Path) -> Iterator[SSHServer]:
    server = make_server(_reachable(root))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


def _reachable(root: Path) -> Path:
    """A folder under which the server's user can reach its own (pytest's are root-only)."""
    if os.geteuid() != 0:
        return root
    return Path(tempfile.gettempdir())


def _sshd_config(server: SSHServer) -> str:
    return f"""\
ListenAddress 127.0.0.1
Port {server.port}
HostKey {server.base}/host_key
AuthorizedKeysFile {server.base}/authorized_keys
PidFile none
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
MaxStartups 100
"""


def _client_config(server: SSHServer) -> str:
    entry = f"""\
  HostName 127.0.0.1
  Port {server.port}
  User {server.user.pw_name}
  IdentityFile {server.user_key}
  IdentitiesOnly yes
"""
    return f"Host {ALIAS}\n{entry}\nHost {OTHER_ALIAS}\n{entry}"


def _server_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwnam(getpass.getuser())
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--user-group", "--create-home", "--shell", "/bin/sh", TEST_USER],
        capture_output=True,
        check=False,  # another test process may have created it just now: look again
    )
    return pwd.getpwnam(TEST_USER)


def _as_user(user: pwd.struct_passwd) -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _own(path: Path, user: pwd.struct_passwd) -> None:
    if os.geteuid() == 0:
        os.chown(path, user.pw_uid, user.pw_gid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = _ppid(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
