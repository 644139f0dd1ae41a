"""The documentation: the parameters page lists every declared setting (it is generated from the
declarations), and the README stays a page whose links all land (the site itself is built with
``mkdocs build --strict`` by the README's test command)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

from distdream import config, options
from distdream.declare import declared, flag_of
from distdream.reference import RECORDS, parameters_markdown

ROOT = Path(__file__).parent.parent


def test_the_parameters_page_lists_every_declared_setting_with_its_flag_and_help() -> None:
    page = parameters_markdown()
    records = {record for _, record, _ in RECORDS}
    with_settings = {
        c for m in (config, options) for _, c in inspect.getmembers(m, inspect.isclass) if c.__module__ == m.__name__
    }
    assert {c for c in with_settings if declared(c)} <= records  # no record of settings left off the page
    first: dict[str, object] = {}
    for _, record, _ in RECORDS:
        for f, decl in declared(record):
            first.setdefault(decl.key or f.name, decl)
            rows = [line for line in page.splitlines() if line.startswith(f"| `{decl.key or f.name}` |")]
            assert len(rows) == 1, f.name  # listed once, where it is first met
            if first[decl.key or f.name] is decl:
                assert (f"`{flag_of(f, decl)}`" in rows[0]) == decl.cli and decl.help.replace("|", "\\|") in rows[0]


def test_the_readme_is_a_page_and_its_links_land() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert links and all((ROOT / link).exists() for link in links if "://" not in link), links
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages <= set(re.findall(r":\s+([\w/.-]+\.md)", nav)) | {"reference/parameters.md"}  # every page in the nav


def test_the_api_page_shows_sphinx_roles_as_code_linked_to_their_entries() -> None:
    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = (
        '<h3 id="distdream.engine.Job">Job</h3><h3 id="distdream.engine.records.JobPlan">JobPlan</h3>'
        "<p>returns a :class:<code>Job</code>, plans a :class:<code>~distdream.engine.records.JobPlan</code>, "
        "raises :class:<code>~distdream.stops.Stopped</code> (:mod:<code>distdream.errors</code>)</p>"
    )
    html = hooks.render_roles(page)
    assert ":class:" not in html and ":mod:" not in html
    assert '<a href="#distdream.engine.Job"><code>Job</code></a>' in html  # a relative name, found
    assert '<a href="#distdream.engine.records.JobPlan"><code>JobPlan</code></a>' in html  # ~: the last part
    assert "<code>Stopped</code> (<code>distdream.errors</code>)" in html  # not on the page: code only
    public = hooks.render_roles(
        '<h3 id="distdream.JobResult">JobResult</h3><p>:class:<code>~distdream.engine.records.JobResult</code></p>'
    )
    assert '<a href="#distdream.JobResult"><code>JobResult</code></a>' in public  # the public entry of an internal path


def test_ci_runs_the_readme_s_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert [b.strip() for b in blocks[:2]] == [
        "python3 -m venv .venv && . .venv/bin/activate && scripts/demo",
        "python3 -m venv .venv && . .venv/bin/activate && scripts/test",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1] == blocks[1].strip()  # CI's last step is that command, as written
    for script in ("demo", "test"):
        assert (ROOT / "scripts" / script).stat().st_mode & 0o111, script  # runnable as written
