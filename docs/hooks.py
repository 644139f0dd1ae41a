"""MkDocs hooks: the parameters page, generated from the declared settings at build time, and the
API page's Sphinx roles (``:class:`~distdream.Job```) shown as code, linked where the page holds
the name."""

from __future__ import annotations

import re
from typing import Any

from mkdocs.structure.files import File, Files

from distdream.reference import parameters_markdown

# a Sphinx role as mkdocstrings leaves it in the page: the role, then the name as code
_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):<code>(~?)([\w.]+)</code>")
_ID = re.compile(r'id="([\w.]+)"')


def on_files(files: Files, config: Any, **_: Any) -> Files:
    files.append(File.generated(config, "reference/parameters.md", content=parameters_markdown()))
    return files


def on_page_content(html: str, **_: Any) -> str:
    return render_roles(html)


def render_roles(html: str) -> str:
    """Each role as its name in code (``~`` shows the last part only, as Sphinx does), linked to
    the page's entry for it: the same dotted name, or the shortest one ending in it; a class named
    by its internal path (``distdream.engine.records.JobPlan``) links to its public entry
    (``distdream.JobPlan``)."""
    ids = set(_ID.findall(html))

    def render(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        code = f"<code>{name.rsplit('.', 1)[-1] if short else name}</code>"
        targets = sorted((i for i in ids if i == name or i.endswith(f".{name}")), key=len)
        last = name.rsplit(".", 1)[-1]
        if not targets and last[:1].isupper():
            targets = sorted((i for i in ids if i.endswith(f".{last}")), key=len)
        return f'<a href="#{targets[0]}">{code}</a>' if targets else code

    return _ROLE.sub(render, html)
