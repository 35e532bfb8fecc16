"""A throw-away PostgreSQL server for the test run: initdb, start on a free port, stop, delete."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path:
        return path
    raise RuntimeError(f"PostgreSQL's {name} is not installed; `make test` installs it.")


class PostgresServer:
    """Start a private PostgreSQL cluster; as root, run it as the 'postgres' system user."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="portfolio-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root.
            shutil.chown(self.base, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def start(self) -> str:
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "portfolio", "--auth=trust",
                  "-E", "UTF8", "--no-locale")
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=100")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.base / "server.log"), "start")
        admin_url = f"postgresql://portfolio@127.0.0.1:{self.port}/postgres"
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE portfolio_test")
        return f"postgresql+psycopg://portfolio@127.0.0.1:{self.port}/portfolio_test"

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
