"""Fixtures shared by every test folder: a real, throwaway PostgreSQL server.

``postgres`` starts a private cluster (Debian's ``postgresql`` package, which
``make test`` installs) on 127.0.0.1 and a free port for the test session and stops
and deletes it afterwards; ``postgres.new_database()`` gives each user a fresh
database. Without the package (or the psycopg driver) the PostgreSQL variants are
skipped with a message saying so. ``any_database`` runs a test on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), if any."""
    found = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").is_file()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A private PostgreSQL cluster: ``initdb``, ``pg_ctl start`` / ``stop`` (as ``postgres`` under root)."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="melascan-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        # initdb and the server refuse to run as root: use the package's ``postgres`` user.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout[-800:]} {result.stderr[-800:]}")

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"melascan_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL server (skipped, with the reason, where it cannot run)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql package)")
    pytest.importorskip("psycopg", reason="the psycopg driver is missing (pip install -e '.[dev]')")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request) -> str | None:
    """``None`` (SQLite in the instance folder) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()
