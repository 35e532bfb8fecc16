"""Ask for an EQA pack through the app as the browser does: POST, follow to the job's page,
read its status, and download the ZIP once it is ready (jobs run inline in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class PackFetch:
    ask: Any  # the POST's response (a 303 to the job's page)
    page: Any  # the job's progress page
    status: dict[str, Any]  # what the page polls
    zip: Any  # the download's response, or None when the pack is not ready

    @property
    def job_url(self) -> str:
        return self.ask.headers["Location"]


def fetch_pack(web: Any, pack_id: int) -> PackFetch:
    ask = web.post(f"/eqa/packs/{pack_id}/download")
    assert ask.status_code == 303, ask.get_data(True)[:500]
    url = ask.headers["Location"]
    assert url.startswith(f"/eqa/packs/{pack_id}/downloads/")
    page = web.client.get(url)
    assert page.status_code == 200, page.get_data(True)[:500]
    status = web.client.get(url + ".json").get_json()
    zipped = web.client.get(status["download"]) if status["download"] else None
    return PackFetch(ask, page, status, zipped)
