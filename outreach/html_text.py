"""HTML bodies: sanitising (nh3, the ammonia bindings) and the plain-text alternative (inscriptis).

Two sanitisers, for two audiences:

- :func:`sanitize_outgoing_html` for what is sent: email clients need inline styles, tables and
  their presentational attributes (``width``, ``bgcolor``, ``cellpadding``…), so those are kept —
  with the CSS properties limited to an allow-list (no ``background-image: url(…)``, no
  ``position``) — while scripts, event handlers and unsafe URLs go.
- :func:`sanitize_html` for what the app displays: nh3's default allow-list (no styles), so a
  body can neither run script nor restyle the page around it.
"""
from __future__ import annotations

import nh3
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

#: CSS properties kept in the ``style`` attributes of outgoing mail (what email clients render).
EMAIL_CSS_PROPERTIES = frozenset({
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-radius", "border-right", "border-spacing", "border-style", "border-top", "border-width", "color",
    "direction", "display", "font", "font-family", "font-size", "font-style", "font-weight", "height",
    "letter-spacing", "line-height", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top",
    "max-width", "min-width", "padding", "padding-bottom", "padding-left", "padding-right", "padding-top",
    "table-layout", "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
    "white-space", "width", "word-break", "word-wrap",
})
_EMAIL_TAGS = nh3.ALLOWED_TAGS | {"font"}
_EMAIL_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "align", "valign", "width", "height", "bgcolor", "dir", "lang", "title"},
    "table": {"border", "cellpadding", "cellspacing", "summary", "role"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "scope", "nowrap"},
    "font": {"color", "face", "size"},
    "img": {"src", "alt", "border"},
    "a": {"href", "target", "name"},
}
_TEXT_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)


def sanitize_html(html: str) -> str:
    """``html`` made safe to show inside the app: nh3's default allow-list (no scripts, event
    handlers, styles or unsafe URLs). Returns str."""
    return nh3.clean(html or "", link_rel="noopener noreferrer")


def sanitize_html_blocking_remote_images(html: str) -> tuple[str, int]:
    """As :func:`sanitize_html`, with every image that would be fetched from another server (an
    ``http:``/``https:``/protocol-relative ``src`` or ``srcset``: tracking pixels) left without
    its source. ``data:`` and ``cid:`` images stay. Returns (html, how many images were blocked)."""
    blocked = 0

    def keep_local_images(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute in ("src", "srcset"):
            if not value.strip().lower().startswith(("data:", "cid:")):
                blocked += attribute == "src"
                return None
        return value

    return nh3.clean(html or "", link_rel="noopener noreferrer", attribute_filter=keep_local_images), blocked


def sanitize_outgoing_html(html: str) -> str:
    """``html`` made safe to send: scripts, event handlers and unsafe URLs removed; inline styles
    (properties in :data:`EMAIL_CSS_PROPERTIES`), tables and presentational attributes kept. Returns str."""
    return nh3.clean(html or "", tags=_EMAIL_TAGS, attributes=_EMAIL_ATTRIBUTES, link_rel="noopener noreferrer",
                     filter_style_properties=set(EMAIL_CSS_PROPERTIES))


def html_to_text(html: str) -> str:
    """The plain-text alternative of ``html`` (inscriptis, which lays out block elements, lists and
    table cells with their word boundaries): links keep their URL as ``[text](url)``. Returns str
    ending in one newline."""
    text = get_text(html or "", _TEXT_CONFIG)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"
