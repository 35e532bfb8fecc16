"""What WeasyPrint may load while rendering a portfolio: our static files and evidence by hash.

`file://`, `http(s)://`, `data:` and every other scheme are refused, so evidence text (Markdown,
Word, email HTML) can never make the renderer read local files or reach the network. Evidence
is served only when its bytes still hash to the SHA-256 it is asked for by: a file swapped in
the store is refused (and the export, which attaches every original, fails with its name).
"""

from __future__ import annotations

import mimetypes
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from weasyprint.urls import URLFetcher, URLFetcherResponse

from portfolio.evidence.integrity import StoredFileDamaged
from portfolio.evidence.paths import object_key
from portfolio.evidence.print_copy import ensure_print_copy
from portfolio.export.schemes import EVIDENCE_SCHEME, PRINT_SCHEME, STATIC_SCHEME
from portfolio.storage import as_backend

__all__ = ["EVIDENCE_SCHEME", "STATIC_SCHEME", "PortfolioFetcher", "PrintFetcher", "RefusedURL",
           "make_fetcher"]


class RefusedURL(ValueError):
    """A URL the renderer is not allowed to fetch."""


def _response(url: str, data: bytes, mime: str) -> URLFetcherResponse:
    headers = EmailMessage()
    headers["Content-Type"] = mime
    return URLFetcherResponse(url, data, headers, 200)


class PortfolioFetcher(URLFetcher):
    """Serve `portfolio-static:` from the static folder and `evidence:<sha256>` from the store."""

    def __init__(self, static_dir: Path, store: Any) -> None:
        super().__init__(allowed_protocols=("portfolio-static", "evidence"))
        self.static_root = static_dir.resolve()
        self.store = as_backend(store)  # a backend, a FileStore, or a local store's folder
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url.startswith(STATIC_SCHEME):
            relative = url[len(STATIC_SCHEME):].lstrip("/")
            path = (self.static_root / relative).resolve()
            if self.static_root in path.parents and path.is_file():
                mime, _ = mimetypes.guess_type(path.name)
                return _response(url, path.read_bytes(), mime or "application/octet-stream")
        elif url.startswith(EVIDENCE_SCHEME):
            digest = url[len(EVIDENCE_SCHEME):]
            try:
                data = self.store.read_verified(object_key(digest), digest, route="pdf render")
            except (ValueError, OSError, StoredFileDamaged):  # not a hash, missing, or damaged
                data = None
            if data is not None:
                return _response(url, data, "application/octet-stream")
        self.refused.append(url)
        raise RefusedURL(f"refused: {url}")


class PrintFetcher(PortfolioFetcher):
    """The restricted fetcher, plus `evidence-print:<sha256>`: the print copy of a photo
    (see `portfolio.evidence.print_copy`), made here if it was not made when the photo was
    stored. The original file is still attached to the PDF byte for byte.
    """

    def __init__(self, static_dir: Path, store: Any) -> None:
        super().__init__(static_dir, store)
        self._allowed_protocols = ("portfolio-static", "evidence", "evidence-print")

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith(PRINT_SCHEME):
            digest = url[len(PRINT_SCHEME):]
            try:
                prepared = ensure_print_copy(self.store, digest)
            except ValueError:  # not a SHA-256: refused below, as any unknown object is
                prepared = None
            if prepared is not None:
                return _response(url, prepared, "image/jpeg")
            # Not an image we can prepare: fall back to the original (still only by hash).
            return super().fetch(EVIDENCE_SCHEME + digest, headers)
        return super().fetch(url, headers)


def make_fetcher(static_dir: Path, store: Any) -> PortfolioFetcher:
    """Return a WeasyPrint url_fetcher limited to static files and stored evidence."""
    return PortfolioFetcher(static_dir, store)
