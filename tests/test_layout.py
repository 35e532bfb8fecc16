"""The code's layout, read from its imports: no circle of imports between modules, and no view
module leaning on another blueprint's views (issue 15). Imports inside functions and under
TYPE_CHECKING are left out: they run late, so they cannot make a circle at import time. An
import inside a function needs a reason, though: see HEAVY and LAZY below."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "portfolio"


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _parse(path).body:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.startswith("portfolio"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                           else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("portfolio")]
            for target in targets:
                resolved = known(target)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    circles.append(sorted(group))
    return circles


def test_no_circle_of_imports():
    assert _circles(_import_graph()) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def _is_views(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "views" or last.endswith("_views")


def test_no_view_imports_another_blueprints_views():
    graph = _import_graph()
    crossings = [f"{module} imports {target}" for module, targets in graph.items()
                 if _is_views(module) for target in targets
                 if _is_views(target) and target.rsplit(".", 1)[0] != module.rsplit(".", 1)[0]]
    assert crossings == []


# --- imports inside functions ----------------------------------------------------------------
# An import belongs at the top of its module unless it has a reason to wait. The reasons:
#
# 1. A heavy library that a CLI command or a web worker would otherwise load for nothing.
#    Cost measured on top of the app's own imports (`import portfolio.db, portfolio.models`,
#    then time `import X`; standalone `python -X importtime -c "import X"` in brackets), Dec 2026:
HEAVY = {
    "weasyprint": "1195 ms (1217 ms): PDF layout, export workers only",
    "pyhanko": "670 ms (613 ms): PDF signing",
    "pyhanko_certvalidator": "loaded with pyhanko",
    "asn1crypto": "27 ms (37 ms): certificates, used with pyhanko",
    "extract_msg": "269 ms (552 ms): Outlook .msg files",
    "boto3": "204 ms (225 ms): S3 storage, only when configured",
    "botocore": "loaded with boto3; only when the S3 backend is configured",
    "openpyxl": "170 ms (234 ms): spreadsheets",
    "pypdf": "109 ms (222 ms): reading finished export PDFs",
    "rq": "81 ms (295 ms): job queue, only with REDIS_URL",
    "redis": "65 ms (189 ms): only with REDIS_URL",
    "mammoth": "55 ms (149 ms): Word documents",
    "pikepdf": "39 ms (91 ms): PDF assembly, export workers only",
    "pypdfium2": "24 ms (47 ms): PDF previews, in the preview child process only",
}
# 2. A portfolio module whose own top-level imports load one of those libraries (found from
#    the import graph, so no list is kept).
# 3. A circle of imports that moving a function to where it belongs cannot break, or a
#    deliberate exception; each pair says why. A pair that is no longer needed fails the test.
LAZY = {
    ("portfolio.db", "portfolio.audit"):
        "audit writes through the database layer; db runs audit's hooks after each commit",
    ("portfolio.evidence.services", "portfolio.assessment.services"):
        "decisions rest on evidence and a changed piece of evidence reopens its decisions",
    ("portfolio.evidence.services", "portfolio.evidence.redaction"):
        "redaction makes new versions through the evidence services, which check redaction",
    ("portfolio.export.jobs", "portfolio.eqa.pack_jobs"):
        "pack jobs run on the export queue; the export worker's death handler also fails them",
    ("portfolio.evidence.parsing.rendering", "PIL"):
        "the preview child process loads a decoder only for the kind of file it reads",
    ("portfolio.evidence.parsing.rendering", "pillow_heif"): "the same",
}
# Whole files left out: the CLI and the app factory import late on purpose (start-up time,
# blueprint registration); demo data builders and migrations run as one-off scripts.
EXEMPT_FILES = {"portfolio/__init__.py", "portfolio/cli.py", "portfolio/demo.py",
                "portfolio/demo_portfolio.py"}
EXEMPT_FOLDERS = ("portfolio/migrations/",)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement brings in: modules, or module.name pairs."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    return [f"{base}.{alias.name}" for alias in node.names]


def _late_imports() -> list[tuple[str, str, int, list[str]]]:
    """(file, module, line, names) of every import statement inside a function."""
    found = []
    for name, path in _modules().items():
        is_package = path.name == "__init__.py"
        tree = _parse(path)
        functions = [node for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
        seen: set[int] = set()
        for function in functions:
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in seen:
                    seen.add(id(node))
                    found.append((path.relative_to(ROOT.parent).as_posix(), name, node.lineno,
                                  _imported(node, name, is_package)))
    return found


def _heavy_at_top(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """For each module, the heavy libraries importing it loads (its top-level imports and
    those of the portfolio modules they import, and so on)."""
    direct: dict[str, set[str]] = {}
    for name, path in _modules().items():
        tops = set()
        for node in _parse(path).body:
            if isinstance(node, ast.Import):
                tops |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops.add(node.module.split(".")[0])
        direct[name] = tops & set(HEAVY)
    loaded: dict[str, set[str]] = {}
    for start in graph:
        seen, stack, heavy = {start}, [start], set()
        while stack:
            module = stack.pop()
            heavy |= direct[module]
            for target in graph[module] - seen:
                seen.add(target)
                stack.append(target)
        loaded[start] = heavy
    return loaded


def _unneeded_late_imports() -> list[str]:
    modules = _modules()
    graph = _import_graph()
    heavy = _heavy_at_top(graph)

    def portfolio_module(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    problems = []
    for file, module, line, names in _late_imports():
        if file in EXEMPT_FILES or file.startswith(EXEMPT_FOLDERS):
            continue
        for name in names:
            top = name.split(".")[0]
            where = f"{file}:{line} imports {name} inside a function"
            if top != "portfolio":
                if (module, top) in LAZY:
                    continue
                if top not in HEAVY:
                    problems.append(f"{where}: not a heavy library, import it at the top")
                elif top in heavy[module]:
                    problems.append(f"{where}: {module} loads {top} at import anyway")
                continue
            target = portfolio_module(name)
            if target is None or target == module or (module, target) in LAZY:
                continue
            if not heavy[target] - heavy[module]:
                problems.append(f"{where}: not a listed cycle and loads nothing heavy; "
                                "import it at the top")
    return problems


def test_imports_inside_functions_have_a_reason():
    assert _unneeded_late_imports() == []


def test_every_lazy_pair_is_still_needed():
    """A pair stays on the list only while its import is still late and, for a portfolio
    module, while importing it at the top would close a circle."""
    graph = _import_graph()
    late = {(module, name.split(".")[0] if not name.startswith("portfolio") else name)
            for _, module, _, names in _late_imports() for name in names}

    def reaches(start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            module = stack.pop()
            if module == goal:
                return True
            for target in graph[module] - seen:
                seen.add(target)
                stack.append(target)
        return False

    stale = []
    for module, target in LAZY:
        if not any(m == module and (n == target or n.startswith(target + "."))
                   for m, n in late):
            stale.append(f"{module} no longer imports {target} late")
        elif target.startswith("portfolio") and not reaches(target, module):
            stale.append(f"{module} could import {target} at the top: no circle")
    assert stale == []
