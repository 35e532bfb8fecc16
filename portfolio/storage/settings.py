"""How to reach the store, in a module of its own so that the backends and the package that
picks one can all import it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StorageSettings:
    """How to reach the store: picklable, for the PDF render processes."""

    backend: str
    root: str  # the local store, and the staging folder (root/tmp) for every backend
    endpoint_url: str = ""
    bucket: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    prefix: str = ""
