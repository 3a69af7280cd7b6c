"""Showing inbound HTML safely: nh3 with no images or other elements that load remote content."""
from __future__ import annotations

import nh3

#: nh3's allow-list minus everything that fetches a URL when displayed (tracking pixels, remote images).
INBOUND_TAGS = set(nh3.ALLOWED_TAGS) - {"img", "area", "map"}


def sanitize_inbound_html(html: str) -> str:
    """Sanitised HTML of an inbound mail: no scripts, styles, event handlers or remote content;
    links get rel="noopener noreferrer nofollow". Returns str (safe to mark_safe)."""
    return nh3.clean(html or "", tags=INBOUND_TAGS, link_rel="noopener noreferrer nofollow",
                     url_schemes={"http", "https", "mailto"})
