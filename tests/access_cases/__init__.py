"""Extra access-matrix cases, one module per domain.

Each module here defines `cases(m) -> list` (m is tests.test_access_matrix, for Case and the
outcome helpers) and may define `setup(app, session, world) -> None` to add the objects its cases
need to the shared world (ids stored as attributes of `world`).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    """Every case module in this package, in name order."""
    return [importlib.import_module(f"{__name__}.{info.name}")
            for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)]
