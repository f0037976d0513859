"""A throwaway PostgreSQL server for tests (initdb + pg_ctl on a private port and socket dir).

    with PostgresServer.start() as pg:
        url = pg.create_database("warehouse")   # postgresql+psycopg://sim_test@127.0.0.1:PORT/warehouse

The server lives in a fresh temporary folder (data dir, socket dir, log), listens only on
127.0.0.1 on a free port, trusts its one superuser, and is stopped (``pg_ctl stop -m fast``, then
SIGKILL if that does not work) and deleted on exit. initdb and pg_ctl refuse to run as root, so as
root they run as the ``postgres`` user (``runuser``) in a folder owned by that user.

Leftovers of earlier sessions that died without cleaning up (``kill -9`` of pytest) are found by
an owner file naming the test process: if that process is gone, its server is stopped and its
folder removed the next time a server starts.

Binaries: ``SIM_PG_BIN`` or the newest ``/usr/lib/postgresql/<version>/bin``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

PG_BIN_ENV = "SIM_PG_BIN"
DIR_PREFIX = "sim-pg-"
OWNER_FILE = "owner.pid"
USER = "sim_test"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Settings for a disposable test server: no durability, fast failure, prompt cleanup of
# backends whose client was killed (client_connection_check_interval).
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "client_connection_check_interval": "500ms",
}


class PostgresUnavailable(RuntimeError):
    """No usable PostgreSQL binaries (or no way to run them) on this machine."""


def find_bin_dir() -> Path:
    """The PostgreSQL binary folder: ``SIM_PG_BIN`` or the newest /usr/lib/postgresql/*/bin."""
    env = os.environ.get(PG_BIN_ENV)
    candidates = (
        [Path(env)]
        if env
        else sorted(
            (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
            key=lambda p: _version_key(p.parent.name),
            reverse=True,
        )
    )
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    where = f"{PG_BIN_ENV}={env}" if env else "/usr/lib/postgresql/*/bin"
    raise PostgresUnavailable(f"no initdb/pg_ctl found in {where}")


def check_available() -> Path:
    """Raise :class:`PostgresUnavailable` (saying why) unless a server can be started here."""
    bin_dir = find_bin_dir()
    _server_os_user()
    return bin_dir


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class PostgresServer:
    """One running throwaway server; use :meth:`start` as a context manager."""

    def __init__(self, root: Path, bin_dir: Path, port: int, run_as: str | None) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = port
        self.run_as = run_as  # OS user that owns and runs the server (None: this user)
        self.user = USER
        self.host = "127.0.0.1"

    # ----- paths
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    # ----- lifecycle
    @classmethod
    @contextlib.contextmanager
    def start(cls, *, timeout: float = 60) -> Iterator[PostgresServer]:
        """Start a fresh server; stop it and delete its folder on exit (also on errors)."""
        bin_dir = find_bin_dir()
        run_as = _server_os_user()
        _remove_leftovers()
        root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=_base_dir(run_as)))
        (root / OWNER_FILE).write_text(f"{os.getpid()}\n")
        server = cls(root, bin_dir, 0, run_as)
        try:
            server._init(timeout)
            server._start_on_free_port(timeout)
            yield server
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(
            cmd,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        )

    def _chown(self, path: Path) -> None:
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _init(self, timeout: float) -> None:
        self._chown(self.root)
        self.socket_dir.mkdir()
        self._chown(self.socket_dir)
        r = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            timeout=timeout,
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def _start_on_free_port(self, timeout: float, attempts: int = 3) -> None:
        last = ""
        for _ in range(attempts):  # another process may take the port between probe and bind
            self.port = free_port()
            opts = " ".join(
                [f"-p {self.port}", f"-k {self.socket_dir}"]
                + [f"-c {k}={v}" for k, v in SERVER_OPTIONS.items()]
            )
            r = self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                str(int(timeout)),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                opts,
                timeout=timeout + 10,
            )
            if r.returncode == 0:
                return
            last = f"{r.stdout}\n{r.stderr}\n{self.log_tail()}"
            self.stop()
        raise RuntimeError(f"pg_ctl start failed {attempts} times:\n{last}")

    def stop(self, timeout: float = 30) -> None:
        """Stop fast; if the postmaster is still alive after that, SIGKILL it."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = _read_pid(pid_file)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._run(
                "pg_ctl",
                "stop",
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
                "-D",
                str(self.data_dir),
                timeout=timeout + 10,
            )
        if pid and _pid_alive(pid) and pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ----- databases and users
    def url(
        self, db: str, *, driver: str = "psycopg", user: str | None = None, password: str = ""
    ) -> str:
        """SQLAlchemy URL of a database on this server (psycopg 3 unless told otherwise)."""
        userinfo = quote(user or self.user, safe="")
        if password:
            userinfo += ":" + quote(password, safe="")
        return f"postgresql+{driver}://{userinfo}@{self.host}:{self.port}/{db}"

    def dsn(self, db: str = "postgres") -> str:
        """libpq connection string for psycopg.connect()."""
        return f"host={self.host} port={self.port} user={self.user} dbname={db}"

    def connect(self, db: str = "postgres", *, autocommit: bool = True):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(self.dsn(db), autocommit=autocommit, connect_timeout=10)

    def connect_as(self, user: str, password: str, db: str):  # -> psycopg.Connection
        """A TCP connection as another role, with its password (no trust fallback for it)."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            dbname=db,
            connect_timeout=10,
        )

    def create_database(self, name: str, *, replace: bool = True) -> str:
        """Create database ``name`` (dropping an old one of that name) and return its URL."""
        _check_name(name)
        with self.connect() as con:
            if replace:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dagster_yaml(self, db: str) -> str:
        """dagster.yaml text for an instance whose storage (runs, event log, schedules) is ``db``,
        as deploy/dagster.yaml configures it (`sim_pipeline.dagster_postgres_storage`).

        dagster-postgres needs psycopg2 (under SQLAlchemy 2.1 plain ``postgresql://`` means
        psycopg 3), hence the scheme. Telemetry off, as in every instance of this project.
        """
        return (
            "# Dagster instance on a throwaway test PostgreSQL server.\n"
            "storage:\n"
            "  custom:\n"
            "    module: sim_pipeline.dagster_postgres_storage\n"
            "    class: SimPostgresStorage\n"
            "    config:\n"
            "      postgres_db:\n"
            f"        username: {self.user}\n"
            f"        hostname: {self.host}\n"
            f"        port: {self.port}\n"
            f"        db_name: {db}\n"
            "        scheme: postgresql+psycopg2\n"
            "telemetry:\n"
            "  enabled: false\n"
        )

    def add_password_user(self, user: str, password: str, database: str) -> None:
        """A login role that must authenticate with its password (scram-sha-256) over TCP.

        The pg_hba.conf line goes first, so for this user and database the server's trust rule
        does not apply: a wrong or missing password is refused.
        """
        _check_name(user)
        _check_name(database)
        with self.connect() as con:
            con.execute(f'DROP ROLE IF EXISTS "{user}"')
            con.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD {_literal(password)}')
            con.execute(f'ALTER DATABASE "{database}" OWNER TO "{user}"')
        hba = self.data_dir / "pg_hba.conf"
        line = f"host {database} {user} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(line + hba.read_text())
        with self.connect() as con:
            con.execute("SELECT pg_reload_conf()")
        # The postmaster re-reads pg_hba.conf asynchronously: wait until a wrong password fails.
        import psycopg

        deadline = time.monotonic() + 10
        while True:
            try:
                self.connect_as(user, password + "-wrong", database).close()
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    return
                raise
            if time.monotonic() > deadline:
                raise RuntimeError("pg_hba.conf change not in effect after 10 s")
            time.sleep(0.1)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _server_os_user() -> str | None:
    """``postgres`` when running as root (initdb refuses root), else None (run as this user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailable("running as root and there is no 'postgres' OS user") from exc
    if not shutil.which("runuser"):
        raise PostgresUnavailable("running as root and runuser is not available")
    return "postgres"


def _base_dir(run_as: str | None) -> Path:
    """Where server folders go: the temp dir, or /tmp if the server's OS user could not reach it."""
    base = Path(tempfile.gettempdir()).resolve()
    if run_as and not all(p.stat().st_mode & 0o001 for p in [base, *base.parents]):
        return Path("/tmp")
    return base


def _remove_leftovers(min_age_seconds: float = 5) -> None:
    """Stop and delete servers of earlier test processes that are gone (never a live owner's)."""
    bases = {_base_dir(None), Path("/tmp")}
    for d in sorted(p for base in bases for p in base.glob(DIR_PREFIX + "*")):
        try:
            if time.time() - d.stat().st_mtime < min_age_seconds:
                continue
        except OSError:
            continue
        owner = _read_pid(d / OWNER_FILE)
        if owner is None or _pid_alive(owner):
            continue  # not one of ours, or its owner still runs
        pid = _read_pid(d / "data" / "postmaster.pid")
        if pid and _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
            for _ in range(50):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
