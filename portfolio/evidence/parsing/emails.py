"""Emails (.eml, Outlook .msg) shown with their headers and text, never their HTML."""

from __future__ import annotations

import logging
import mimetypes
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

from portfolio.evidence.parsing.limits import (
    MAX_ATTACHMENTS,
    MAX_HEADER_CHARS,
    MAX_HEADERS,
    MAX_HTML_TO_TEXT_CHARS,
    MAX_TEXT_CHARS,
)
from portfolio.evidence.parsing.model import EmailPreview, Preview
from portfolio.evidence.parsing.sniffing import Sniffed

logger = logging.getLogger(__name__)


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "table", "ul", "ol", "blockquote", "pre", "hr", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _html_to_text(html: str) -> str:
    """Return the readable text of an HTML fragment (never used to render it)."""
    parser = _TextExtractor()
    parser.feed(html[:MAX_HTML_TO_TEXT_CHARS])
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _clean_header(value: str) -> str:
    return re.sub(r"\s*\r?\n[ \t]+", " ", value).strip()[:MAX_HEADER_CHARS]


def _email_text(email: EmailPreview) -> str:
    parts = [email.subject, email.sender, *email.to, *email.cc, email.body_text,
             *(str(a.get("name", "")) for a in email.attachments)]
    return "\n".join(p for p in parts if p)[:MAX_TEXT_CHARS]


def _eml_addresses(msg: EmailMessage, name: str) -> list[str]:
    out: list[str] = []
    for header_name, raw in msg.raw_items():
        if header_name.lower() != name.lower():
            continue
        try:
            parsed = msg.policy.header_fetch_parse(header_name, raw)
            if getattr(parsed, "defects", None):
                raise ValueError("a header the parser had to repair")
            out.extend(str(address) for address in parsed.addresses)
        except Exception:
            out.extend(part.strip() for part in str(raw).split(",") if part.strip())
        if len(out) >= MAX_HEADERS:
            break
    return [_clean_header(a) for a in out[:MAX_HEADERS]]


def _part_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
    except Exception:  # unknown charset or broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if part.get_content_type() == "text/html":
        content = _html_to_text(content)
    return str(content)


def _preview_eml(path: Path, sniffed: Sniffed) -> Preview:
    with open(path, "rb") as handle:
        msg = cast(EmailMessage, BytesParser(policy=policy.default).parse(handle))
    headers: list[tuple[str, str]] = []
    for name, raw in list(msg.raw_items())[:MAX_HEADERS]:
        try:
            parsed = msg.policy.header_fetch_parse(name, raw)
            # A header the parser had to repair is shown as written, not as repaired.
            value = str(raw) if getattr(parsed, "defects", None) else str(parsed)
        except Exception:
            value = str(raw)
        headers.append((name, _clean_header(value)))

    def header(name: str) -> str:
        return next((v for n, v in headers if n.lower() == name.lower()), "")

    taken: str | None = None
    try:
        date_header = msg.get("Date")
        when = getattr(date_header, "datetime", None)
        taken = when.isoformat() if when else None
    except Exception:
        taken = None
    body = ""
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is not None:
            body = _part_text(part)
    except Exception:
        logger.info("email body unreadable", exc_info=True)
    attachments: list[dict[str, Any]] = []
    try:
        for part in msg.iter_attachments():
            if len(attachments) >= MAX_ATTACHMENTS:
                break
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else len(part.as_bytes())
            attachments.append({"name": _clean_header(part.get_filename() or "(no name)"),
                                "size": size, "media_type": part.get_content_type()})
    except Exception:
        logger.info("email attachments unreadable", exc_info=True)
    email = EmailPreview(
        sender=header("From"), to=_eml_addresses(msg, "To"), cc=_eml_addresses(msg, "Cc"),
        date=taken, subject=header("Subject"), body_text=body[:MAX_TEXT_CHARS],
        headers=headers, attachments=attachments)
    return Preview(kind="email", email=email, text=_email_text(email),
                   truncated=len(body) > MAX_TEXT_CHARS)


def _msg_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).replace("\x00", "").strip()


def _preview_msg(path: Path, sniffed: Sniffed) -> Preview:
    import extract_msg

    msg = extract_msg.openMsg(str(path), strict=False)
    try:
        def attr(name: str) -> Any:
            try:
                return getattr(msg, name, None)
            except Exception:
                return None

        body = _msg_str(attr("body"))
        if not body:
            html = attr("htmlBody")
            body = _html_to_text(_msg_str(html)) if html else ""
        when = attr("date")
        if isinstance(when, datetime):
            date_text: str | None = when.isoformat()
        else:
            date_text = _msg_str(when) or None
        headers: list[tuple[str, str]] = []
        transport = attr("header")
        if transport is not None:
            try:
                for name, value in list(transport.items())[:MAX_HEADERS]:
                    headers.append((str(name), _clean_header(str(value))))
            except Exception:
                headers = []
        attachments: list[dict[str, Any]] = []
        for item in (attr("attachments") or [])[:MAX_ATTACHMENTS]:
            name = _msg_str(getattr(item, "longFilename", None)
                            or getattr(item, "shortFilename", None)
                            or getattr(item, "name", None)) or "(no name)"
            try:
                data = item.data
            except Exception:
                data = None
            media_type = (getattr(item, "mimetype", None) or mimetypes.guess_type(name)[0]
                          or "application/octet-stream")
            if data is not None and not isinstance(data, bytes):
                media_type = "application/vnd.ms-outlook"  # an email attached to an email
            attachments.append({"name": name, "size": len(data) if isinstance(data, bytes)
                                else None, "media_type": _msg_str(media_type)})

        def people(value: Any) -> list[str]:
            return [p.strip() for p in re.split(r"[;\n]", _msg_str(value)) if p.strip()]

        email = EmailPreview(
            sender=_msg_str(attr("sender")), to=people(attr("to")), cc=people(attr("cc")),
            date=date_text, subject=_msg_str(attr("subject")), body_text=body[:MAX_TEXT_CHARS],
            headers=headers, attachments=attachments)
    finally:
        msg.close()
    return Preview(kind="email", email=email, text=_email_text(email),
                   truncated=len(body) > MAX_TEXT_CHARS)
