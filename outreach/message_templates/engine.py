"""The merge-field engine: Jinja2's sandbox with a closed vocabulary of fields, plus spintax.

Why Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` and not Django's template engine: Django's
documentation says its template system "isn't safe against untrusted template authors" (Django 5.2,
"The Django template language: for Python programmers", https://docs.djangoproject.com/en/5.2/ref/templates/api/),
while Jinja2's sandbox exists for exactly that case (https://jinja.palletsprojects.com/en/3.1.x/sandbox/):
it refuses unsafe attributes (``__class__``, ``mro``, function globals), bounds ``range`` and
renders from plain data. We go further than the sandbox and check every template when it is saved:

- only the fields in :data:`MERGE_FIELDS` exist (the context holds plain ``str``/``dict`` values, never
  model instances, so there is no attribute to reach beyond them);
- only output (``{{ … }}``), ``{% if %}``/``{% elif %}``/``{% else %}``, comparisons, literals and the
  filters in :data:`FILTERS` are allowed — no loops, calls, ``include``/``import``/``extends``,
  assignments or macros, so a template can neither read a file nor run for long;
- an unknown field, a forbidden construct or a syntax error is a ValidationError naming the field
  (subject/body) and the line.

Django-style filter arguments (``{{ first_name|default:"there" }}``) are accepted and mean the same
as Jinja's ``{{ first_name|default("there") }}``; ``default`` applies to empty values too, as in Django.

Spintax ``{Hi|Hello|Hey}`` picks one option per contact; the choice is a pure function of the seed
(e.g. ``"<template id>:<contact id>"``), so a retried or re-rendered message reads the same.
Options may hold merge fields (``{Hi {{ first_name }}|Hello}``) and nest. A brace group without
``|`` (CSS in a ``<style>`` block, for example) is left as it is.
"""
from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

#: Every merge field a template may use, with the help text shown beside the editor.
MERGE_FIELDS: dict[str, str] = {
    "first_name": "Contact's first name",
    "last_name": "Contact's last name",
    "full_name": "First and last name",
    "email": "Contact's email address",
    "company": "Company",
    "title": "Job title",
    "phone": "Phone",
    "linkedin_url": "LinkedIn URL",
    "custom.<key>": "A custom field of the contact (e.g. an imported column), empty when missing",
    "lead.status": "Lead status (e.g. New, Contacted)",
    "lead.source": "Lead source",
    "lead.owner_name": "Name of the lead's owner",
    "sender.name": "Sender's display name (the mailbox's sender name)",
    "sender.first_name": "First word of the sender's name",
    "sender.last_name": "Rest of the sender's name",
    "sender.email": "Sender's address",
}

CONTACT_FIELDS = ("first_name", "last_name", "full_name", "email", "company", "title", "phone", "linkedin_url")
#: Namespaced fields: namespace → allowed attributes (None: any key that is a plain identifier).
NAMESPACES: dict[str, tuple[str, ...] | None] = {
    "lead": ("status", "source", "owner_name"),
    "sender": ("name", "first_name", "last_name", "email"),
    "custom": None,
}


def _default(value, default_value="", boolean=True):
    """Django's ``default``: ``default_value`` when ``value`` is empty or undefined."""
    return value if value else default_value


#: The filters a template may use (Jinja2 built-ins, except ``default`` which acts as Django's).
FILTERS = ("default", "upper", "lower", "title", "capitalize", "trim", "truncate", "replace")

_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Const,
    nodes.Filter, nodes.If, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.CondExpr,
    nodes.Concat, nodes.Test,
)
_TESTS = ("defined", "undefined", "none", "string", "number")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_ -]{0,99}$")


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=autoescape, keep_trailing_newline=True)
    env.filters = {name: env.filters[name] for name in FILTERS if name in env.filters}
    env.filters["default"] = env.filters["d"] = _default
    env.globals.clear()
    env.tests = {name: env.tests[name] for name in _TESTS}
    return env


_HTML_ENV = _environment(autoescape=True)
_TEXT_ENV = _environment(autoescape=False)


# --- Django-style filter arguments ----------------------------------------------------------

_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_DJANGO_ARG = re.compile(r"""\|\s*(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|[A-Za-z_][\w.]*)""")


def _jinja_filters(source: str) -> str:
    """``|name:"arg"`` inside ``{{ }}``/``{% %}`` → ``|name("arg")``; text outside is untouched."""
    return _BLOCK.sub(lambda m: _DJANGO_ARG.sub(r"|\1(\2)", m.group(0)), source)


# --- spintax ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spin:
    options: tuple[tuple, ...]  # each option: a tuple of segments (str | _Spin)


def _parse_spintax(source: str) -> tuple:
    """Split ``source`` into segments: plain strings and :class:`_Spin` groups (nested allowed)."""
    segments, _ = _parse_segments(source, 0, top=True)
    return segments


def _jinja_block_end(source: str, i: int) -> int:
    """If a Jinja delimiter starts at ``i``, the index after its end (or len), else -1."""
    pair = source[i:i + 2]
    closer = {"{{": "}}", "{%": "%}", "{#": "#}"}.get(pair)
    if closer is None:
        return -1
    end = source.find(closer, i + 2)
    return len(source) if end < 0 else end + 2


def _parse_segments(source: str, i: int, *, top: bool) -> tuple[tuple, int]:
    """Parse from ``i`` until the end (top) or an unmatched ``|``/``}`` (inside a group)."""
    out: list = []
    text: list[str] = []
    n = len(source)
    while i < n:
        end = _jinja_block_end(source, i)
        if end >= 0:
            text.append(source[i:end])
            i = end
            continue
        ch = source[i]
        if ch == "{":
            group, after = _parse_group(source, i)
            if group is None:
                text.append("{")
                i += 1
                continue
            if text:
                out.append("".join(text))
                text = []
            out.append(group)
            i = after
            continue
        if not top and ch in "|}":
            break
        text.append(ch)
        i += 1
    if text:
        out.append("".join(text))
    return tuple(out), i


def _parse_group(source: str, start: int) -> tuple[_Spin | None, int]:
    """Parse ``{a|b|…}`` at ``start``; returns (None, start) when it is no spin group."""
    options = []
    i = start + 1
    while True:
        option, i = _parse_segments(source, i, top=False)
        options.append(option)
        if i >= len(source):
            return None, start  # unclosed: literal text
        if source[i] == "|":
            i += 1
            continue
        # source[i] == "}"
        if len(options) < 2:
            return None, start  # a brace group without alternatives stays literal
        return _Spin(tuple(options)), i + 1


def _expand(segments: tuple, pick) -> str:
    parts = []
    for seg in segments:
        if isinstance(seg, _Spin):
            parts.append(_expand(pick(seg.options), pick))
        else:
            parts.append(seg)
    return "".join(parts)


def expand_spintax(source: str, *, seed: str) -> str:
    """``source`` with each ``{a|b|c}`` group replaced by one option chosen from ``seed`` (str).

    The same source and seed always give the same text.
    """
    rng = random.Random(hashlib.sha256(seed.encode("utf-8")).digest())
    return _expand(_parse_spintax(source), lambda options: options[rng.randrange(len(options))])


def _join_options(segments: tuple) -> str:
    parts = []
    for seg in segments:
        parts.append(" ".join(_join_options(o) for o in seg.options) if isinstance(seg, _Spin) else seg)
    return "".join(parts)


def _all_options(source: str) -> str:
    """Every option of every spin group, joined by spaces (what validation checks); newlines kept."""
    return _join_options(_parse_spintax(source))


# --- validation -------------------------------------------------------------------------------

def _field_name(node: nodes.Node) -> str | None:
    """The merge field a Name/Getattr/Getitem node reads ("first_name", "sender.email"), or None."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return f"{node.node.name}.{node.attr}"
    if (isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name)
            and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
        return f"{node.node.name}.{node.arg.value}"
    return None


def _check_field(node: nodes.Node) -> str:
    """Return the field ``node`` reads, or raise ValueError saying why it is not allowed."""
    name = _field_name(node)
    if name is None:
        raise ValueError("only merge fields such as {{ first_name }} or {{ sender.email }} can be used here")
    head, _, attr = name.partition(".")
    if not attr:
        if head in CONTACT_FIELDS:
            return name
        if head in NAMESPACES:
            raise ValueError(f"“{head}” needs a field, e.g. {{{{ {head}.{(NAMESPACES[head] or ('industry',))[0]} }}}}")
        raise ValueError(f"unknown merge field “{head}”")
    if head not in NAMESPACES:
        raise ValueError(f"unknown merge field “{name}”")
    allowed = NAMESPACES[head]
    if allowed is None:
        if not _KEY.match(attr):
            raise ValueError(f"“{attr}” is not a custom field name")
        return name
    if attr not in allowed:
        raise ValueError(f"unknown merge field “{name}” (known: {', '.join(f'{head}.{a}' for a in allowed)})")
    return name


class _Refused(ValueError):
    """A construct the engine refuses; ``lineno`` is where it is."""

    def __init__(self, message: str, lineno: int):
        super().__init__(message)
        self.lineno = lineno


def _walk(node: nodes.Node, found: set[str], *, required: set[str], defaulted: bool, in_test: bool) -> None:
    try:
        _walk_node(node, found, required=required, defaulted=defaulted, in_test=in_test)
    except _Refused:
        raise
    except ValueError as err:
        raise _Refused(str(err), getattr(node, "lineno", 1)) from err


def _walk_node(node: nodes.Node, found: set[str], *, required: set[str], defaulted: bool, in_test: bool) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        raise ValueError(f"“{type(node).__name__}” is not allowed in a message template "
                         "(only merge fields, filters and {% if %} blocks)")
    if isinstance(node, (nodes.Name, nodes.Getattr, nodes.Getitem)):
        name = _check_field(node)
        found.add(name)
        if not defaulted and not in_test:
            required.add(name)
        return
    if isinstance(node, nodes.Filter):
        if node.name not in FILTERS and node.name != "d":
            raise ValueError(f"unknown filter “{node.name}” (allowed: {', '.join(FILTERS)})")
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise ValueError(f"filter “{node.name}” takes positional arguments only")
        is_default = node.name in ("default", "d")
        _walk(node.node, found, required=required, defaulted=defaulted or is_default, in_test=in_test)
        for arg in node.args:
            _walk(arg, found, required=required, defaulted=True, in_test=in_test)
        return
    if isinstance(node, nodes.Test):
        if node.name not in _TESTS:
            raise ValueError(f"unknown test “{node.name}”")
        if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise ValueError(f"test “{node.name}” takes no arguments")
        _walk(node.node, found, required=required, defaulted=True, in_test=True)
        return
    if isinstance(node, (nodes.If, nodes.CondExpr)):
        _walk(node.test, found, required=required, defaulted=defaulted, in_test=True)
        bodies = ([*node.body, *node.else_] + [n for elif_ in node.elif_ for n in (elif_,)]
                  if isinstance(node, nodes.If) else [node.expr1, node.expr2])
        for child in bodies:
            if child is not None:
                # Fields shown only under a condition are not required of every contact.
                _walk(child, found, required=set(), defaulted=defaulted, in_test=in_test)
        return
    for child in node.iter_child_nodes():
        _walk(child, found, required=required, defaulted=defaulted, in_test=in_test)


@dataclass(frozen=True)
class TemplateInfo:
    """What a valid template uses: ``fields`` (every merge field read) and ``required`` (fields shown
    unconditionally without a ``default`` — a contact with one of them empty is "missing a merge field")."""

    fields: frozenset[str]
    required: frozenset[str]


def check_template(source: str, *, field: str = "body") -> TemplateInfo:
    """Validate ``source`` (a subject or body) as a message template. Returns its :class:`TemplateInfo`.

    Raises ValidationError({field: "Line N: …"}) for a syntax error, an unknown merge field or filter,
    or a construct the sandbox does not allow. Every spintax option is checked. A template that checks
    is remembered (by source), so a campaign step rendered for thousands of contacts is parsed once.
    """
    return _check_template(source or "", field)


@functools.lru_cache(maxsize=512)
def _check_template(source: str, field: str) -> TemplateInfo:
    checked = _jinja_filters(_all_options(source or ""))
    try:
        tree = _TEXT_ENV.parse(checked)
    except TemplateSyntaxError as err:
        raise ValidationError({field: f"Line {err.lineno}: {(err.message or 'syntax error').rstrip('.')}."},
                              code="template_syntax") from err
    found: set[str] = set()
    required: set[str] = set()
    for node in tree.body:
        try:
            _walk(node, found, required=required, defaulted=False, in_test=False)
        except _Refused as err:
            raise ValidationError({field: f"Line {err.lineno}: {err}."}, code="template_field") from err
    return TemplateInfo(frozenset(found), frozenset(required))


# --- rendering -----------------------------------------------------------------------------------

def render_template(source: str, context: dict, *, html: bool, seed: str) -> str:
    """Render ``source`` with ``context`` (see :func:`outreach.message_templates.services.merge_context`).

    ``html``: autoescape merge values (bodies); False for subjects and plain text. ``seed`` (str) fixes
    the spintax choices. The template is checked again first; raises ValidationError as
    :func:`check_template` does.
    """
    check_template(source, field="body" if html else "subject")
    expanded = _jinja_filters(expand_spintax(source or "", seed=seed))
    return _compiled(expanded, html).render(context)


@functools.lru_cache(maxsize=1024)
def _compiled(expanded: str, html: bool):
    """The compiled Jinja2 template for ``expanded`` (spintax already chosen), kept across renders."""
    return (_HTML_ENV if html else _TEXT_ENV).from_string(expanded)


def missing_fields(info: TemplateInfo, context: dict) -> list[str]:
    """The required merge fields of ``info`` that are empty for ``context``, sorted."""
    missing = []
    for name in info.required:
        head, _, attr = name.partition(".")
        value = context.get(head)
        if attr:
            value = value.get(attr) if isinstance(value, dict) else None
        if not value:
            missing.append(name)
    return sorted(missing)
