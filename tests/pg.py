"""A throwaway PostgreSQL cluster for the replica tests: initdb + pg_ctl on a temporary folder,
a free port, a private socket folder; run as `nobody` when the tests run as root (initdb
refuses root). `make test` installs Debian's postgresql (scripts/install-postgres.sh)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PgServer:
    bindir: Path
    socket_dir: Path
    port: int
    user: str = "postgres"

    def dsn(self, database: str) -> str:
        """A libpq connection string without a password (the cluster trusts local sockets)."""
        return f"dbname={database} host={self.socket_dir} port={self.port} user={self.user}"

    def create_database(self, name: str) -> str:
        subprocess.run(
            [str(self.bindir / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", self.user, name],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return self.dsn(name)

    def query(self, database: str, sql: str) -> str:
        found = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-A", "-t", "-q", "-c", sql, self.dsn(database)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return found.stdout.strip()


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "run `bash scripts/install-postgres.sh` (make test does)"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _bindir()
    # A short path of its own: a Unix socket's path must stay under ~100 bytes.
    base = Path(tempfile.mkdtemp(prefix="govdash-pg-"))
    data, sockets, log = base / "data", base / "run", base / "server.log"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        shutil.chown(base, "nobody")
        shutil.chown(sockets, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log),
         "-w", "-t", "60", "start"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    try:
        yield PgServer(bindir, sockets, port)
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, text=True,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_catalog(pg_server: PgServer, request: pytest.FixtureRequest) -> str:
    """A new, empty database of the throwaway cluster for one test: its libpq DSN."""
    name = "lake_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return pg_server.create_database(name)
