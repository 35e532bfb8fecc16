"""`make run` serves on $(PORT), and the PDFs it exports must point their QR code and verify link
at that same address (defect: they used PUBLIC_URL's default, port 5000)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_make_run_sets_public_url_to_its_port():
    root = Path(__file__).resolve().parent.parent
    dry = subprocess.run(["make", "-n", "run", "PORT=5123"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    serve = " ".join(line for line in dry.splitlines() if "portfolio serve" in line
                     or "PORTFOLIO_PUBLIC_URL" in line)
    assert "PORTFOLIO_PUBLIC_URL=${PORTFOLIO_PUBLIC_URL:-http://127.0.0.1:5123}" in serve
    assert "--port 5123" in serve
