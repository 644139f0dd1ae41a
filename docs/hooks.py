"""MkDocs hooks: the parameters page, generated from the declared settings at build time."""

from __future__ import annotations

from typing import Any

from mkdocs.structure.files import File, Files

from distdream.reference import parameters_markdown


def on_files(files: Files, config: Any, **_: Any) -> Files:
    files.append(File.generated(config, "reference/parameters.md", content=parameters_markdown()))
    return files
