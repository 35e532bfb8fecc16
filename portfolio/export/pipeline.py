"""Render a portfolio as separate parts, cached by content hash, in worker processes.

A single WeasyPrint pass over a large portfolio is slow (layout is most of the time), uses one
core and keeps its memory. Here every part (the front sheet, the summary, each evidence item,
chunks of the audit trail, the certificate ...) is an HTML document of its own. Its PDF is kept
in the render cache under the SHA-256 of its HTML and stylesheets, so a re-export renders only
the parts whose content changed. Missing parts are laid out by a pool of processes; pikepdf then
merges them (pikepdf), stamps "Page X of Y" and adds the bookmarks and attachments.

Page references (the evidence location sheet) are plain numbers worked out from the page counts
of the parts, so no part but the location sheet depends on where the others fall.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import render_template

from portfolio.atomic import write_atomically
from portfolio.export.content import PortfolioContent
from portfolio.export.worker import (
    IMAGE_DIR,
    PRINT_SCHEME,
    SECTION_DIR,
    STYLESHEETS,
    render_part,
    warm_up,
)
from portfolio.storage import StorageSettings, as_backend

# Bump when the way parts are made changes in a way their HTML does not show.
PIPELINE_VERSION = "1"
# Rows per part of the long tables. The audit trail is append-only, so its older chunks never
# change; the others are cut so one change re-renders about a page.
AUDIT_CHUNK = 60
MATRIX_ROWS = 45
SIGNATURE_ROWS = 60
HASH_ROWS = 90
# Evidence items per part: fewer, larger parts cost less per page to lay out, and a change
# still re-renders only its own few items.
EVIDENCE_GROUP = 5
FOOTER_FONT = "/PgNoHelv"
# This many parts or fewer are laid out in this process: starting a pool costs about 1.5 s.
INLINE_LIMIT = 10


@dataclass
class Part:
    """One separately rendered part of the PDF."""

    name: str  # "front", "summary", "locations", "matrix", "evidence", "witnesses", ...
    html: str
    title: str  # bookmark text
    anchors: tuple[str, ...] = ()  # evidence anchors in it, for page references
    titles: tuple[str, ...] = ()  # their bookmark texts
    key: str = ""
    pages: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # anchor -> page within the part

    @property
    def label(self) -> str:
        return f"{self.name} {' '.join(self.anchors)}" if self.anchors else self.name

    @property
    def weight(self) -> int:
        return len(self.html) + 40_000 * self.html.count(PRINT_SCHEME)


# --- the main process --------------------------------------------------------------------------


def _stylesheet_digest(static_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in STYLESHEETS:
        digest.update((static_dir / "css" / name).read_bytes())
    return digest.hexdigest()


def part_key(html: str, styles: str) -> str:
    import weasyprint

    material = f"{PIPELINE_VERSION}\0{weasyprint.__version__}\0{styles}\0{html}"
    return hashlib.sha256(material.encode()).hexdigest()


def _read_info(path: Path) -> tuple[int, dict[str, int]]:
    info = json.loads(path.with_suffix(".json").read_text())
    return int(info["pages"]), {str(k): int(v) for k, v in info["anchors"].items()}


class RenderPool:
    """Render processes, started when enough parts need laying out, shut down after."""

    def __init__(self, processes: int) -> None:
        self.processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # safe from threads; no forked state
            self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context)
            for _ in range(self.processes):
                self._pool.submit(warm_up)
        return self._pool

    @property
    def running(self) -> bool:
        return self._pool is not None

    def close(self, *, wait: bool = True) -> None:
        """Stop the processes; without `wait`, they exit while this process goes on."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait)
            self._pool = None


class PartRenderer:
    """Render parts into the cache: missing ones in a process pool, or here when few.

    `submit` takes parts as soon as their HTML is ready. When the pool is already running
    (started early because the cache is cold) they go to it at once, so the processes lay out
    the first parts while the rest are still being written; otherwise they wait for `finish`,
    which lays out a few here and starts the pool for many.
    """

    def __init__(self, *, static_dir: Path, store: StorageSettings, cache_dir: Path,
                 pool: RenderPool) -> None:
        self.static_dir, self.store, self.cache_dir = static_dir, store, cache_dir
        self.pool = pool
        self.styles = _stylesheet_digest(static_dir)
        self.rendered: list[str] = []  # names of the parts laid out
        self.reused = 0
        self._waiting: list[Part] = []  # missing, not yet handed to a process
        self._running: list[tuple[Part, Future[tuple[int, dict[str, int]]]]] = []

    def path(self, part: Part) -> Path:
        return self.cache_dir / SECTION_DIR / f"{part.key}.pdf"

    @property
    def _args(self) -> tuple[str, StorageSettings, str]:
        return str(self.static_dir), self.store, str(self.cache_dir)

    def submit(self, parts: list[Part]) -> None:
        """Take cached parts from the cache; queue (or start) the layout of the others."""
        missing: list[Part] = []
        for part in parts:
            part.key = part_key(part.html, self.styles)
            path = self.path(part)
            if path.is_file():
                try:
                    part.pages, part.offsets = _read_info(path)
                except (OSError, ValueError, KeyError, TypeError):  # damaged: render again
                    missing.append(part)
                    continue
                os.utime(path)  # keeps recently used parts when the cache is pruned
                self.reused += 1
            else:
                missing.append(part)
        if self.pool.running:
            self._hand_over(missing)
        else:
            self._waiting += missing

    def _hand_over(self, parts: list[Part]) -> None:
        pool = self.pool.start()
        parts.sort(key=lambda p: p.weight, reverse=True)  # longest first balances the pool
        self._running += [(part, pool.submit(render_part, part.html, part.key, *self._args))
                          for part in parts]

    def finish(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Lay out what is still missing and wait for every part to be ready."""
        waiting, self._waiting = self._waiting, []
        if self._running or (len(waiting) > INLINE_LIMIT and self.pool.processes > 1):
            self._hand_over(waiting)
            waiting = []
        total, done = len(self._running) + len(waiting), 0
        for part in waiting:
            part.pages, part.offsets = render_part(part.html, part.key, *self._args)
            done += 1
            if progress:
                progress(done, total)
        for part, future in self._running:
            part.pages, part.offsets = future.result()
            done += 1
            if progress:
                progress(done, total)
        self.rendered += [part.label for part in waiting]
        self.rendered += [part.label for part, _future in self._running]
        self._running = []

    def render(self, parts: list[Part],
               progress: Callable[[int, int], None] | None = None) -> None:
        self.submit(parts)
        self.finish(progress)


def _section(c: PortfolioContent, part: str, **extra: Any) -> str:
    return render_template("export/section.html", c=c, part=part, **extra)


def _chunked(c: PortfolioContent, name: str, title: str, rows: list[Any], size: int,
             **extra: Any) -> list[Part]:
    """Long tables as several parts, so a change re-renders only the chunk it falls in."""
    chunks = [rows[start:start + size] for start in range(0, len(rows), size)] or [[]]
    return [Part(name, _section(c, name, rows=chunk, first=n == 0, **extra),
                 title if n == 0 else "")
            for n, chunk in enumerate(chunks)]


def build_parts(c: PortfolioContent, qr: Any) -> tuple[list[Part], list[Part], list[Part]]:
    """Return the parts before the location sheet, the coverage matrix, and the parts after
    the evidence (the evidence items come from `evidence_parts`)."""
    head = [Part("front", _section(c, "front"), "Front sheet"),
            Part("summary", _section(c, "summary"), "Summary of achievement"),
            *_chunked(c, "declarations", "Declarations and signatures", c.signatures,
                      SIGNATURE_ROWS)]
    matrix = _chunked(c, "matrix", "Coverage matrix", c.coverage.columns, MATRIX_ROWS)
    tail = [Part("witnesses", _section(c, "witnesses"), "Witness status list and IQA records")]
    tail += [Part("audit", _section(c, "audit", events=c.audit[start:start + AUDIT_CHUNK],
                                    first=start == 0), "" if start else "Audit trail")
             for start in range(0, max(len(c.audit), 1), AUDIT_CHUNK)]
    tail.append(Part("certificate", _section(c, "certificate", qr=qr), "Signature certificate"))
    tail += _chunked(c, "hashes", "", c.hash_rows, HASH_ROWS)
    return head, matrix, tail


def footer_part(c: PortfolioContent) -> Part:
    """The page footer, drawn once and stamped on every page."""
    return Part("footer", _section(c, "footer"), "")


def evidence_parts(c: PortfolioContent) -> list[Part]:
    """The evidence items, a few to a part."""
    groups = [c.evidence[start:start + EVIDENCE_GROUP]
              for start in range(0, len(c.evidence), EVIDENCE_GROUP)]
    return [Part("evidence", _section(c, "evidence", items=group), "",
                 anchors=tuple(e.anchor for e in group),
                 titles=tuple(f"E{e.id} {e.title}" for e in group)) for group in groups]


def locations_part(c: PortfolioContent, renderer: PartRenderer, head: list[Part],
               body: list[Part]) -> Part:
    """Render the location sheet with page numbers that hold once it is in place."""
    guess = 1 + sum(len(row["evidence"]) or 1 for row in c.locations) // 40
    for _attempt in range(4):
        first = 1 + sum(p.pages for p in head) + guess
        pages, page = {}, first
        for part in body:
            for anchor in part.anchors:
                pages[anchor] = page + part.offsets.get(anchor, 0)
            page += part.pages
        part = Part("locations", _section(c, "locations", pages=pages), "Evidence location sheet")
        renderer.render([part])
        if part.pages == guess:
            return part
        guess = part.pages
    raise RuntimeError("the evidence location sheet's page numbers did not settle")


def _stamp_footers(pdf: Any, total: int, footer: Any) -> None:
    """Draw the footer on every page: the learner's name (`footer`, a form XObject laid out
    once by WeasyPrint, so any script prints with the right font) bottom left, and "Page X of
    Y" bottom right in the PDF standard Helvetica."""
    import pikepdf

    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica,
        Encoding=pikepdf.Name.WinAnsiEncoding))
    for number, page in enumerate(pdf.pages, start=1):
        left, bottom, right, _top = (float(v) for v in page.mediabox)
        text = f"Page {number} of {total}"
        # Helvetica digits are 0.556 em, letters about as wide on average: 8 pt, right-aligned
        # to the 16 mm page margin, on the baseline WeasyPrint's footer uses.
        x = right - 45.35 - len(text) * 8 * 0.53
        y = bottom + 25.4
        name = page.add_resource(font, pikepdf.Name.Font, prefix="PgNo")
        drawing = page.add_resource(footer, pikepdf.Name.XObject, prefix="Ftr")
        # Wrap the page's own drawing in q/Q so none of its graphics state reaches the stamp.
        page.contents_add(pikepdf.Stream(pdf, b"q\n"), prepend=True)
        page.contents_add(pikepdf.Stream(pdf, (
            f"Q q 1 0 0 1 {left:.2f} {bottom:.2f} cm {drawing} Do Q "
            f"q BT {name} 8 Tf 0.29 0.337 0.337 rg {x:.2f} {y:.2f} Td ({text}) Tj ET Q\n"
        ).encode("latin-1")), prepend=False)


@dataclass
class RenderResult:
    pdf: bytes
    pages: int
    rendered: list[str]  # the parts laid out this time
    reused: int  # parts taken from the cache
    timings: dict[str, float]  # seconds per stage
    keys: list[str] = field(default_factory=list)  # every part's cache key, in order


LAST_PARTS_DIR = "last-parts"


def remember_parts(cache_dir: Path, name: str, keys: list[str]) -> None:
    """Note which cached parts an export of `name` (say, one enrolment) was made of."""
    write_atomically(cache_dir / LAST_PARTS_DIR / f"{name}.json", json.dumps(keys).encode(),
                     durable=False)


def forget_parts(cache_dir: Path, name: str) -> int:
    """Delete the cached parts the last export (or preparation) of `name` was made of, and the
    note of them; return how many parts went. For learner work removed under retention: the
    laid-out pages hold its text. Parts of earlier exports are left to `prune_cache`."""
    note = cache_dir / LAST_PARTS_DIR / f"{name}.json"
    try:
        keys = json.loads(note.read_text())
    except (OSError, ValueError):
        return 0
    removed = 0
    for key in keys if isinstance(keys, list) else []:
        if isinstance(key, str) and key.isalnum():
            path = cache_dir / SECTION_DIR / f"{key}.pdf"
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    note.unlink(missing_ok=True)
    return removed


def start_early(cache_dir: Path, name: str, evidence_items: int) -> bool:
    """Whether to start the render processes before the content is even read.

    Yes when many parts will need laying out: the portfolio is large and most parts of its
    last export are no longer in the cache (a first export, a pruned cache, new stylesheets).
    """
    if 8 + -(-evidence_items // EVIDENCE_GROUP) <= INLINE_LIMIT:  # few parts: laid out here
        return False
    try:
        keys = json.loads((cache_dir / LAST_PARTS_DIR / f"{name}.json").read_text())
        present = sum((cache_dir / SECTION_DIR / f"{key}.pdf").is_file() for key in keys)
    except (OSError, ValueError, TypeError):
        return True
    return not keys or present < 0.8 * len(keys)


def render_portfolio(c: PortfolioContent, *, qr: Any, static_dir: Path, store: Any,
                     cache_dir: Path, pool: RenderPool,
                     attachments: Iterable[tuple[str, bytes]],
                     progress: Callable[[int, int], None] | None = None) -> RenderResult:
    """Render, merge, number and attach; return the unsigned PDF."""
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    renderer = PartRenderer(static_dir=static_dir, store=as_backend(store).settings,
                            cache_dir=cache_dir,
                            pool=pool)
    import pikepdf

    merged = pikepdf.Pdf.new()
    sources = []  # pikepdf copies pages lazily: the parts stay open until the merged file is saved
    marks: list[tuple[str, int, list[tuple[str, int]]]] = []
    try:
        # The parts around the evidence first: a running pool starts on them while the
        # evidence items (most of the HTML) are still being written.
        head, matrix, tail = build_parts(c, qr)
        footer = footer_part(c)
        renderer.submit([*head, *matrix, *tail, footer])
        items = evidence_parts(c)
        renderer.submit(items)
        body = [*matrix, *items]
        lap("html")
        # The originals, attached while the processes lay out the parts.
        for name, data in attachments:
            merged.attachments[name] = pikepdf.AttachedFileSpec(merged, data, filename=name)
        lap("attach")
        renderer.finish(progress)
        lap("layout")
        locations = locations_part(c, renderer, head, body)
        pool.close(wait=False)  # every part is laid out: let the processes go (and their memory)
        lap("locations")
        order = [*head, locations, *body, *tail]
        for part in order:
            first_page = len(merged.pages)
            source = pikepdf.open(renderer.path(part))
            sources.append(source)
            merged.pages.extend(source.pages)
            if part.name == "evidence":
                marks.append(("", first_page, [(title, first_page + part.offsets.get(anchor, 0))
                                               for anchor, title in zip(part.anchors,
                                                                        part.titles,
                                                                        strict=True)]))
            elif part.title:
                marks.append((part.title, first_page, []))
        total = len(merged.pages)
        lap("merge")
        source = pikepdf.open(renderer.path(footer))
        sources.append(source)
        drawing = merged.copy_foreign(pikepdf.Page(source.pages[0]).as_form_xobject())
        _stamp_footers(merged, total, drawing)
        lap("footers")
        with merged.open_outline() as outline:
            evidence = None
            for title, page, children in marks:
                if title:
                    outline.root.append(pikepdf.OutlineItem(title, page))
                    continue
                if evidence is None:
                    evidence = pikepdf.OutlineItem("Evidence", page)
                    outline.root.append(evidence)
                evidence.children.extend(pikepdf.OutlineItem(t, p) for t, p in children)
        merged.docinfo[pikepdf.Name.Title] = f"Portfolio: {c.learner}, unit {c.unit.number}"
        merged.docinfo[pikepdf.Name.Author] = c.centre
        merged.docinfo[pikepdf.Name.Subject] = f"{c.unit.reference} {c.unit.title}"
        merged.docinfo[pikepdf.Name.Creator] = "Evidence Builder"
        merged.Root.Lang = pikepdf.String("en-GB")
        merged.Root.PageMode = pikepdf.Name.UseOutlines
        out = io.BytesIO()
        # The parts' streams are compressed already; compressing the attached originals (mostly
        # photos and PDFs) again would cost seconds for nothing.
        merged.save(out, compress_streams=False)
    finally:
        # The merged file refers into the parts until it is gone: close it first.
        merged.close()
        for source in sources:
            source.close()
    lap("write")
    return RenderResult(out.getvalue(), total, renderer.rendered, renderer.reused, timings,
                        [part.key for part in [*order, footer]])


def prune_cache(cache_dir: Path, max_bytes: int) -> int:
    """Delete the least recently used cached parts and images beyond max_bytes; return count."""
    files = []
    for sub in (SECTION_DIR, IMAGE_DIR):
        folder = cache_dir / sub
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and not path.name.startswith("."):
                    stat = path.stat()
                    files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    removed = 0
    for _mtime, size, path in sorted(files):
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True, default=str).encode()
