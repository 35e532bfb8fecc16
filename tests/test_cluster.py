"""Two app instances on different ports sharing PostgreSQL, Redis and SeaweedFS (S3), with a
separate `portfolio worker`, all real processes (tests/cluster.py): what one machine does, the
other sees, and a machine killed half-way through an upload loses nothing.

It needs no database of the suite's own, so it runs once, in the SQLite run (the PostgreSQL
run skips tests that do not use the suite's database); it starts its own PostgreSQL."""

from __future__ import annotations

import http.client
import re
import signal
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import psycopg
import pytest
import requests

from tests.cluster import Cluster
from tests.real_files import text_pdf_bytes

CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
LEARNER, ASSESSOR = "learner@demo.example", "assessor@demo.example"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(instances=2, web_workers=1, proxy=False) as running:
        yield running


def _sign_in(base: str, email: str, password: str) -> requests.Session:
    web = requests.Session()
    page = web.get(f"{base}/login", timeout=30)
    token = CSRF.search(page.text).group(1)
    answer = web.post(f"{base}/login", data={"email": email, "password": password,
                                             "csrf_token": token},
                      allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text[:500]
    return web


def _token(cluster: Cluster, email: str) -> dict[str, str]:
    raw = cluster.run_cli("users", "token", email, "--name", "cluster test").strip()
    return {"Authorization": f"Bearer {raw.splitlines()[-1]}"}


def _sql(cluster: Cluster, query: str) -> list[tuple]:
    url = cluster.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def _bucket_keys(cluster: Cluster) -> set[str]:
    import boto3
    from botocore.config import Config

    s3 = cluster.s3
    client = boto3.client("s3", endpoint_url=s3["S3_ENDPOINT_URL"],
                          aws_access_key_id=s3["S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3["S3_SECRET_ACCESS_KEY"],
                          region_name=s3["S3_REGION"],
                          config=Config(s3={"addressing_style": "path"}))
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3["S3_BUCKET"]):
        keys |= {item["Key"] for item in page.get("Contents", [])}
    return keys


def _learner_enrolment(cluster: Cluster, api: dict[str, str]) -> int:
    body = requests.get(f"{cluster.urls[0]}/api/v1/enrolments", headers=api, timeout=30).json()
    return body["items"][0]["id"]


def test_a_session_and_an_upload_cross_machines(cluster: Cluster):
    a, b = cluster.urls
    web = _sign_in(a, LEARNER, cluster.demo_password)
    home = web.get(f"{b}/", timeout=30)  # the cookie from A works on B
    assert home.status_code == 200 and "Aisha Khan" in home.text
    api = _token(cluster, LEARNER)
    enrolment = _learner_enrolment(cluster, api)
    data = text_pdf_bytes(["Dear customer,", "Thank you for your call about the bill."])
    made = requests.post(
        f"{a}/api/v1/enrolments/{enrolment}/evidence", headers=api, timeout=60,
        data={"kind": "work_product", "title": "Reply letter", "activity_on": "2026-11-30",
              "personal_data_confirmed": "true"},
        files={"files": ("reply.pdf", data, "application/pdf")})
    assert made.status_code == 201, made.text[:500]
    file_id = made.json()["version"]["files"][0]["id"]
    fetched = requests.get(f"{b}/api/v1/files/{file_id}", headers=api, timeout=60)
    assert fetched.status_code == 200 and fetched.content == data
    ranged = requests.get(f"{b}/api/v1/files/{file_id}", timeout=60,
                          headers={**api, "Range": "bytes=0-7"})
    assert ranged.status_code == 206 and ranged.content == data[:8]


def test_an_export_asked_on_one_machine_is_made_by_the_worker(cluster: Cluster):
    a, b = cluster.urls
    web = _sign_in(a, ASSESSOR, cluster.demo_password)
    enrolment = _learner_enrolment(cluster, _token(cluster, LEARNER))
    page = web.get(f"{a}/enrolments/{enrolment}/exports", timeout=30)
    token = CSRF.search(page.text).group(1)
    asked = web.post(f"{a}/enrolments/{enrolment}/exports", data={"csrf_token": token},
                     allow_redirects=False, timeout=30)
    assert asked.status_code == 302
    job_id = int(asked.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    deadline = time.monotonic() + 240
    while True:
        status = web.get(f"{b}/export-jobs/{job_id}.json", timeout=30).json()
        if status["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status["status"] == "done", (status, cluster.log("worker")[-3000:])
    pdf = web.get(f"{b}{status['download']}", timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # Made by the worker process, not by either web instance.
    assert f"export job {job_id}" in cluster.log("worker") or "exports" in cluster.log("worker")


def test_the_sign_in_throttle_counts_across_machines(cluster: Cluster):
    a, b = cluster.urls
    answers = []
    for n in range(7):
        base = (a, b)[n % 2]
        web = requests.Session()
        page = web.get(f"{base}/login", timeout=30)
        token = CSRF.search(page.text).group(1)
        answers.append(web.post(f"{base}/login", timeout=30, allow_redirects=False, data={
            "email": "iqa@demo.example", "password": f"wrong-{n}",
            "csrf_token": token}).status_code)
    # Five wrong passwords (LOGIN_MAX_FAILURES), whichever machine took them; then locked.
    assert answers[:5] == [401] * 5 and answers[5:] == [429, 429], answers


def _start_slow_upload(base: str, api: dict[str, str],
                       enrolment: int) -> http.client.HTTPConnection:
    """Send the headers and the first part of a multipart upload, then stop sending."""
    boundary = "clustertestboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nwork_product\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHalf\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"half.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").encode()
    body_length = len(head) + 3_000_000
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("POST", f"/api/v1/enrolments/{enrolment}/evidence")
    conn.putheader("Authorization", api["Authorization"])
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(body_length))
    conn.endheaders()
    conn.send(head + b"%PDF-1.7\n" + b"x" * 1_000_000)
    return conn


def test_a_machine_killed_mid_upload_loses_nothing(cluster: Cluster):
    a, b = cluster.urls
    api = _token(cluster, LEARNER)
    enrolment = _learner_enrolment(cluster, api)
    evidence_before = _sql(cluster, "SELECT count(*) FROM evidence")[0][0]
    files_before = _sql(cluster, "SELECT count(*) FROM evidence_files")[0][0]
    keys_before = _bucket_keys(cluster)
    conn = _start_slow_upload(a, api, enrolment)
    time.sleep(1.0)  # A is reading the body into its staging file
    cluster.kill_instance(0, signal.SIGKILL)
    conn.close()
    # Nothing half-written: no evidence row, no file row, no object in the bucket.
    assert _sql(cluster, "SELECT count(*) FROM evidence")[0][0] == evidence_before
    assert _sql(cluster, "SELECT count(*) FROM evidence_files")[0][0] == files_before
    assert _bucket_keys(cluster) == keys_before
    # B still serves everything, and A comes back.
    assert requests.get(f"{b}/api/v1/enrolments", headers=api, timeout=30).status_code == 200
    cluster.start_instance(0)
    assert requests.get(f"{a}/readyz", timeout=30).status_code == 200


def test_readiness_reports_the_store_down_and_recovers(cluster: Cluster):
    b = cluster.urls[1]
    assert requests.get(f"{b}/readyz", timeout=30).status_code == 200
    weed = cluster.seaweed.process
    assert weed is not None
    weed.send_signal(signal.SIGSTOP)  # the store stops answering (a hung or unreachable S3)
    try:
        down = requests.get(f"{b}/readyz", timeout=30)
        assert down.status_code == 503
        assert down.json()["checks"]["storage"] != "ok"
        assert requests.get(f"{b}/healthz", timeout=30).status_code == 200
    finally:
        weed.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 30
    while requests.get(f"{b}/readyz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "readiness did not recover"
        time.sleep(0.5)
