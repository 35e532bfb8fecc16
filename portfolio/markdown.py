"""The one Markdown renderer: python-markdown, then nh3 with a tight allow-list."""

from __future__ import annotations

import markdown as md
import nh3
from markupsafe import Markup

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "code", "pre", "blockquote", "ul", "ol", "li",
    "h2", "h3", "h4", "h5", "h6", "hr", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
# Only web and mail links: no javascript:, data: or relative tricks into other schemes.
ALLOWED_SCHEMES = {"http", "https", "mailto"}


def render_markdown(source: str) -> Markup:
    """Render Markdown to sanitised HTML safe to place in any page or PDF."""
    html = md.markdown(source or "", extensions=["tables", "sane_lists"], output_format="html")
    # Headings start at h2: h1 belongs to the page the text sits in.
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above
