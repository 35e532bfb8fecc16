"""Several machines' worth of the app on one machine, as local processes on loopback ports:
PostgreSQL, Redis and SeaweedFS (S3) shared by N gunicorn instances and one `portfolio worker`,
with nginx in front spreading requests over the instances. The instances share nothing else
but what every machine must share (the secret key, the seal key and the centre signing keys);
each has its own instance folder and render cache.

`make cluster` runs it with the demo data until Ctrl-C (`python -m tests.cluster`);
tests/test_cluster.py and `make bench-cluster` start it from Python:

    with Cluster(instances=2) as cluster:
        cluster.urls  # each instance's own address; cluster.proxy_url: nginx in front
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.pg import PostgresServer
from tests.servers import RedisServer, SeaweedServer, ServerFailed, free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str, log: Path,
                    seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"{what} exited with {process.returncode}: "
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise ServerFailed(f"{what} did not listen on {port} within {seconds:.0f} s: "
                       f"{log.read_text(errors='replace')[-3000:]}")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


class Cluster:
    """Start with `start()` (or `with`), stop with `stop()`. Processes can be stopped and
    started again one by one (`kill_instance`, `start_instance`, `seaweed`)."""

    def __init__(self, *, instances: int = 2, web_workers: int = 1, proxy: bool = True,
                 demo: bool = True, bare_app: bool = False,
                 setup: Callable[[Cluster], None] | None = None) -> None:
        self.instances = instances
        self.web_workers = web_workers
        self.want_proxy = proxy
        self.want_demo = demo
        self.want_bare = bare_app
        self.setup = setup
        self.folder = Path(tempfile.mkdtemp(prefix="portfolio-cluster-"))
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        self.seaweed = SeaweedServer()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self.database_url = ""
        self.s3: dict[str, str] = {}
        self.demo_password = ""

    # --- life cycle -----------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.database_url = self.postgres.start()
            redis_url = self.redis.start()
            self.s3 = self.seaweed.start()
            seal = self.folder / "seal.key"
            seal.write_text(secrets.token_urlsafe(48) + "\n")
            seal.chmod(0o600)
            self.env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")},
                "PORTFOLIO_ENV": "production",
                "PORTFOLIO_DATABASE_URL": self.database_url,
                "PORTFOLIO_REDIS_URL": redis_url,
                "PORTFOLIO_SECRET_KEY": secrets.token_urlsafe(32),
                "PORTFOLIO_SEAL_KEY_FILE": str(seal),
                "PORTFOLIO_SIGNING_KEYS_DIR": str(self.folder / "signing-keys"),
                "PORTFOLIO_STORAGE_BACKEND": "s3",
                **{f"PORTFOLIO_{k}": v for k, v in self.s3.items()},
                "PORTFOLIO_SESSION_COOKIE_SECURE": "false",  # plain HTTP on loopback
                "PORTFOLIO_INSTANCE_PATH": str(self.folder / "setup"),
            }
            self.run_cli("db", "upgrade")
            self.run_cli("criteria", "load")
            if self.want_demo:
                self.run_cli("demo")
                self.demo_password = (self.folder / "setup" / "demo_password").read_text()
            if self.setup is not None:
                self.setup(self)  # e.g. a benchmark's data, before anything serves
            if self.want_demo or self.setup is not None:
                # Production refuses to start while a centre has no signing key.
                self.run_cli("keys", "init", "--all")
            # Every address is known before anything listens: the instances' public URL is
            # the proxy's, or the first instance's without one.
            for n in range(self.instances):
                self.ports[f"web-{n}"] = free_port()
            if self.want_proxy:
                self.ports["proxy"] = free_port()
            for n in range(self.instances):
                self.start_instance(n)
            self.start_worker()
            if self.want_bare:
                self._start_bare()
            if self.want_proxy:
                self._start_proxy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in list(self.processes):
            self._end(name)
        self.seaweed.stop()
        self.redis.stop()
        with contextlib.suppress(Exception):  # it may not have started
            self.postgres.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- the parts ------------------------------------------------------------------------------

    def instance_env(self, n: int) -> dict[str, str]:
        folder = self.folder / f"instance-{n}"
        return {**self.env, "PORTFOLIO_INSTANCE_PATH": str(folder),
                "PORTFOLIO_RENDER_CACHE_DIR": str(folder / "render-cache"),
                "PORTFOLIO_PUBLIC_URL": self.proxy_url if self.want_proxy else self.urls[0]}

    def run_cli(self, *args: str) -> str:
        done = subprocess.run([str(BIN / "portfolio"), *args], env=self.env, cwd=PROJECT_ROOT,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ServerFailed(f"`portfolio {' '.join(args)}` failed: {done.stdout[-2000:]}"
                               f"{done.stderr[-2000:]}")
        return done.stdout

    def _launch(self, name: str, command: list[str], env: dict[str, str]) -> Path:
        log = self.folder / f"{name}.log"
        handle = log.open("ab")
        self.processes[name] = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True)
        handle.close()
        return log

    def start_instance(self, n: int) -> None:
        name = f"web-{n}"
        port = self.ports.setdefault(name, free_port())
        log = self._launch(name, [
            str(BIN / "gunicorn"), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
            "--workers", str(self.web_workers), "--bind", f"127.0.0.1:{port}",
            "--timeout", "120", "portfolio.wsgi:app"], self.instance_env(n))
        _wait_listening(port, self.processes[name], name, log)

    def start_worker(self) -> None:
        self._launch("worker", [str(BIN / "portfolio"), "worker"], self.instance_env(0))

    def _start_bare(self) -> None:
        port = self.ports.setdefault("bare", free_port())
        log = self._launch("bare", [
            str(BIN / "gunicorn"), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
            "--workers", str(self.web_workers), "--bind", f"127.0.0.1:{port}",
            "bench.bare_app:app"],
            {**self.env, "BARE_DATABASE_URL": self.database_url, "BARE_HIGHEST_USER_ID": "1"})
        _wait_listening(port, self.processes["bare"], "bare", log)

    def _start_proxy(self) -> None:
        binary = nginx_binary()
        if binary is None:
            raise ServerFailed("nginx is not installed: `make cluster` installs it "
                               "(scripts/ensure-system-deps cluster).")
        if self.want_bare:
            self.ports["proxy-bare"] = free_port()
        conf = self.folder / "nginx.conf"
        conf.write_text(self.nginx_conf())
        log = self._launch("proxy", [binary, "-p", str(self.folder), "-c", str(conf),
                                     "-g", "daemon off;"], self.env)
        _wait_listening(self.ports["proxy"], self.processes["proxy"], "nginx", log)

    def nginx_conf(self, instances: list[int] | None = None) -> str:
        """nginx in front: round robin over the instances, keep-alive to them, uploads up to
        the app's limit; with the bare app, a second server in front of it alone."""
        chosen = range(self.instances) if instances is None else instances
        upstream = "\n".join(f"    server 127.0.0.1:{self.ports[f'web-{n}']};" for n in chosen)
        bare = ""
        if self.want_bare:
            bare = (f"  upstream bare {{ server 127.0.0.1:{self.ports['bare']}; keepalive 32; }}\n"
                    f"  server {{ listen 127.0.0.1:{self.ports['proxy-bare']};\n"
                    "    location / { proxy_pass http://bare; proxy_http_version 1.1;\n"
                    "      proxy_set_header Connection \"\"; } }\n")
        temp = self.folder / "nginx-temp"
        temp.mkdir(exist_ok=True)
        return f"""worker_processes 1;
pid {self.folder / 'nginx.pid'};
error_log {self.folder / 'nginx-error.log'} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  client_max_body_size 200m;
  upstream portfolio {{
{upstream}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{self.ports['proxy']};
    location / {{
      proxy_pass http://portfolio;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 120s;
    }}
  }}
{bare}}}
"""

    def reload_proxy(self, instances: list[int]) -> None:
        """Send the proxy's requests to these instances only (nginx reloads gracefully)."""
        (self.folder / "nginx.conf").write_text(self.nginx_conf(instances))
        self.processes["proxy"].send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def kill_instance(self, n: int, sig: int = signal.SIGKILL) -> None:
        """Kill instance n's gunicorn and its workers at once (SIGKILL: no clean-up at all)."""
        self._end(f"web-{n}", sig)

    def _end(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # --- addresses ------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports[f'web-{n}']}" for n in range(self.instances)]

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}" if "proxy" in self.ports else ""

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args(argv)
    print("· starting PostgreSQL, Redis, SeaweedFS, the app and nginx ...", flush=True)
    with Cluster(instances=args.instances, web_workers=args.web_workers) as cluster:
        print(f"\nOpen {cluster.proxy_url} (nginx over {args.instances} instances: "
              f"{', '.join(cluster.urls)}), one worker, PostgreSQL, Redis and SeaweedFS (S3).")
        print(f"Demo logins use the password {cluster.demo_password!r}, e.g. "
              "learner@demo.example, assessor@demo.example, iqa@demo.example, "
              "admin@demo.example.")
        print(f"Logs: {cluster.folder}/*.log. Ctrl-C stops everything and deletes it.",
              flush=True)
        try:
            while all(p.poll() is None for p in cluster.processes.values()):
                time.sleep(1)
            dead = [n for n, p in cluster.processes.items() if p.poll() is not None]
            print(f"stopped: {', '.join(dead)} exited; see its log above", file=sys.stderr)
            for name in dead:
                print(cluster.log(name)[-2000:], file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\n· stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
