"""The one Jinja2 environment every page is rendered with (``grader/report/templates``).

HTML templates (``*.html.j2``) are autoescaped: every value a template prints is escaped
unless the code marks it safe, so escaping is the engine's job, not each writer's.
Markdown templates (``*.md.j2``) are not HTML; their values go through the Markdown
filters (``md_text``, ``md_code``, ``md_block``), which make submission text inert there.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from grader.report.common import one_line

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md_text(text: object, limit: int = 200) -> str:
    """Untrusted text made inert inside a Markdown line or table cell."""
    escaped = html.escape(one_line(str(text), limit), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def md_code(text: object) -> str:
    """Untrusted text in a code span (backtick runs cannot close it)."""
    text = one_line(str(text), 300)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_block(text: object) -> str:
    """Untrusted multi-line text in a fenced code block no line of it can close."""
    text = str(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith(".html.j2")


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The environment: the package's templates, HTML autoescaped, undefined names errors."""
    env = Environment(loader=PackageLoader("grader.report", "templates"),
                      autoescape=_autoescape, undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(md_text=md_text, md_code=md_code, md_block=md_block)
    return env


def render(template: str, **values: object) -> str:
    """Render ``template`` (a file of ``grader/report/templates``) with ``values``."""
    return environment().get_template(template).render(**values)
