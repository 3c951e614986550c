"""Issue #12, the dashboard: data and URL parameters are shown as text, pages write nothing to a
visitor-chosen path, and login (when switched on) stands before every page.

The store is built the way a user builds it: deployments and incidents through `gitops-dora import`
(a separate process), the rest through the store's writer. Its names are hostile: a service named
like a Markdown link, an environment named like a Markdown image pointing at a "pixel" URL, incident
titles with HTML and Streamlit directives, and so on.

What AppTest hands back is each element's Markdown *source*. :func:`rendered` parses that source
with markdown-it (CommonMark + strikethrough + tables) and fails on anything that would become a
link, an image, HTML or formatting, or on text that GitHub-flavoured Markdown or Streamlit rewrite
after parsing (bare URLs, e-mail addresses, emoji shortcodes, typographic arrows) outside a code
span. tests/test_browser_security.py checks the same pages in a real Chromium.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from analytics.store.connection import open_writer
from dashboards import charts
from dashboards.answers_form import AnswersFolderError, answers_folder, file_name, save_answers
from dashboards.filters import default_window
from dashboards.safe_text import file_part, md, md_code, plot_text
from tests import cli_inprocess
from tests.apptest_pages import new_app, start_page
from tests.child_env import child_env
from tests.dashboard_server import dashboard_command

pytestmark = pytest.mark.usefixtures("one_duckdb_thread")  # tests/conftest.py
CLI = str(Path(sys.executable).parent / "gitops-dora")

LINK_SERVICE = "[login](https://evil.example/login)"
TEAM = "**team** [t](https://evil.example/team)"


def image_env(port: int) -> str:
    return f"![x](http://127.0.0.1:{port}/pixel)"


def hostile_strings(port: int) -> list[str]:
    pixel = f"http://127.0.0.1:{port}"
    return [
        LINK_SERVICE, image_env(port), TEAM,
        f'<a href="https://evil.example/inc">click</a> <img src="{pixel}/pixel-html"> :red[alarm] $x^2$',
        "https://evil.example/bare www.evil.example mail@evil.example <https://evil.example/auto>",
        ":smile: :streamlit: :material/home: a -> b -- c >= d",
        "- list\n# heading\n> quote\n1. item | a | b |",
        "`tick` ``double`` \\[escaped](https://evil.example/esc) _em_ *em* ~~strike~~ &amp; &lt;",
        f"[![nested]({pixel}/pixel-nested)](https://evil.example/nested)",
    ]


# --- what the Markdown sources render to -----------------------------------------------------------

_PARSER = MarkdownIt("commonmark").enable(["strikethrough", "table"])
_FORBIDDEN = {"link_open", "image", "html_inline", "html_block", "em_open", "strong_open", "s_open",
              "autolink_open", "table_open", "heading_open", "bullet_list_open", "ordered_list_open",
              "blockquote_open", "hr", "fence", "code_block"}
# rewritten by GFM's autolink literals, remark-emoji or Streamlit's plugins in the parsed text
_TEXT_REWRITES = re.compile(r"(?i)https?://|www\.|[\w.+-]+@[\w-]+\.\w|:(?!\d[\d+-]*:)[\w+-]+:|"
                            r"(?:^|\s)(?:<->|->|<-|--|>=|<=|~=)(?:\s|$)")
# Streamlit's math ($...$) and directives (:red[...]) are parsed from the source (escapes count)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)")
_SOURCE_SYNTAX = re.compile(r"(?<!\\)(?:\\\\)*(?:\$|:[a-z][\w-]*\[)")


class Unsafe(AssertionError):
    pass


def rendered(source: str, *, allow: frozenset[str] = frozenset()) -> str:
    """The text a reader sees for ``source``; raises Unsafe where data would act as Markup.
    ``allow``: token types the page's own text uses around the data (e.g. bold labels)."""
    if ":material/" in source:
        raise Unsafe(f"Streamlit turns ':material/' into an icon before parsing: {source!r}")
    if _SOURCE_SYNTAX.search(_CODE_SPAN.sub("", source)):
        raise Unsafe(f"unescaped math or directive in {source!r}")
    out: list[str] = []
    for block in _PARSER.parse(source):
        if block.type in _FORBIDDEN and block.type not in allow:
            raise Unsafe(f"{block.type} in {source!r}")
        for tok in block.children or []:
            if tok.type in _FORBIDDEN and tok.type not in allow:
                raise Unsafe(f"{tok.type} in {source!r}")
            if tok.type == "text":
                if _TEXT_REWRITES.search(tok.content):
                    raise Unsafe(f"{tok.content!r} is rewritten after parsing, in {source!r}")
                out.append(tok.content)
            elif tok.type == "code_inline":
                out.append(tok.content)
            elif tok.type in ("softbreak", "hardbreak"):
                out.append(" ")
    return " ".join("".join(out).split())


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("text", hostile_strings(9))
def test_md_is_the_literal_text_and_the_checker_catches_raw_markdown(text: str) -> None:
    assert rendered(md(text)) == one_line(text)
    assert rendered(f"**Label:** {md(text)} · {md_code(text)}", allow=frozenset({"strong_open"})) \
        == one_line(f"Label: {text} · {text}")
    with pytest.raises(Unsafe):   # the check is not vacuous: the raw text would act as Markdown
        rendered(text)


def test_md_keeps_ordinary_names_readable() -> None:
    assert md("payments-api") == "payments-api"
    assert md("production") == "production"
    assert md("/srv/repos/gitops-config") == "/srv/repos/gitops-config"
    assert md(None) == ""
    assert md("snake_case") == "snake\\_case"


def test_plot_text_and_file_names() -> None:
    assert plot_text('<a href="https://evil.example">x</a> & <br>') == \
        '&lt;a href="https://evil.example"&gt;x&lt;/a&gt; &amp; &lt;br&gt;'
    for raw in ("../../etc/passwd", "..", "a/../b", "![x](http://h/p)", ""):
        part = file_part(raw)
        assert part and "/" not in part and ".." not in part and not part.startswith(".")


def test_charts_draw_data_as_text() -> None:
    """Plotly reads <a href>, <img>-like tags and entities in titles, legends, ticks and hovers."""
    evil = '<a href="https://evil.example/p">x</a>'
    week = pd.DataFrame({"week": pd.to_datetime(["2026-03-02"]), "service": [evil],
                         "environment": ["<b>p</b>"], "deployments": [1]})
    trend = pd.DataFrame({"period_start": pd.to_datetime(["2026-03-02", "2026-03-09"]), "group": [evil, "b"],
                          "rate": [0.1, 0.2]})
    incidents = pd.DataFrame({"id": [evil], "title": ["%{x} <a href='https://evil.example/t'>t</a>"],
                              "service": [evil], "created_at": pd.to_datetime(["2026-03-02"], utc=True),
                              "resolved_at": pd.to_datetime(["2026-03-03"], utc=True),
                              "deployment_id": [None]})
    deployments = pd.DataFrame({"id": [evil], "service": [evil], "outcome": ["ok"],
                                "deployed_at": pd.to_datetime(["2026-03-02"], utc=True)})
    figures = [charts.weekly_bars(week), charts.trend_lines(trend, "rate", "t", "rate"),
               charts.incident_timeline(incidents, deployments)]
    for fig in figures:
        text = fig.to_json()
        assert "<a " not in text and "<b>" not in text, text[:500]
        assert "&lt;a href=" in text
    hover = figures[2].data[1].hovertemplate
    assert "evil" not in hover and "%{customdata[1]}" in hover   # data only through fields


# --- a hostile store, loaded through the real CLI ------------------------------------------------


def hostile_deployment_id(port: int) -> str:
    return f"![d](http://127.0.0.1:{port}/pixel-id)"


def build_hostile_store(root: Path, port: int) -> Path:
    """A store whose names, titles and messages are Markdown/HTML aimed at the visitor's browser;
    ``port``: where the "pixel" images point (a local server the browser test counts hits on)."""
    pixel = f"http://127.0.0.1:{port}"
    env = image_env(port)
    db = root / "hostile.ducklake"
    deployments = root / "deployments.csv"
    rows = [
        {"id": "dep-1", "service": LINK_SERVICE, "environment": env, "revision": "v1",
         "deployed_at": "2026-03-02T10:00:00Z", "status": "success", "repository": ""},
        {"id": hostile_deployment_id(port), "service": LINK_SERVICE, "environment": env, "revision": "v2",
         "deployed_at": "2026-03-04T10:00:00Z", "status": "failed", "repository": ""},
        {"id": "dep-3", "service": LINK_SERVICE, "environment": env, "revision": "v3",
         "deployed_at": "2026-03-06T10:00:00Z", "status": "success", "repository": ""},
    ]
    pd.DataFrame(rows).to_csv(deployments, index=False)
    incidents = root / "incidents.csv"
    pd.DataFrame([{
        "id": "INC-1", "service": LINK_SERVICE, "environment": env,
        "created_at": "2026-03-02T11:00:00Z", "resolved_at": "2026-03-02T13:00:00Z",
        "title": f'<a href="https://evil.example/inc">click</a> ![p]({pixel}/pixel-title) :red[alarm]',
        "root_cause": "dep-1",
    }]).to_csv(incidents, index=False)
    # the real CLI's import, in this process (tests/cli_inprocess.py: the same entry point, environment,
    # folder and exit status); what it stores is the subject here, not the process
    proc = cli_inprocess.run(["--db", str(db), "import", str(deployments), str(incidents)], env=child_env(),
                             cwd=root)
    assert proc.returncode == 0, proc.stderr
    t = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with open_writer(db, source="test") as w:
        w.upsert("services", [{"name": LINK_SERVICE, "team": TEAM}])
        w.upsert("repositories", [{"id": "shop", "url": "https://evil.example/shop.git", "local_path": "/x",
                                   "web_url": "https://evil.example/shop", "is_bare": False,
                                   "is_shallow": False}])
        w.upsert("commits", [{"repo": "shop", "sha": "c" * 40, "parents": [], "author_time": t,
                              "committer_time": t, "is_merge": False,
                              "author_name": f"![a]({pixel}/pixel-author)",
                              "subject": f"[commit](https://evil.example/c) ![c]({pixel}/pixel-commit)"}])
        w.upsert("deployment_changes", [{"deployment_id": "dep-1", "repo": "shop", "sha": "c" * 40}])
        w.upsert("pull_requests", [{
            "repo": "shop", "number": 7, "provider": "github", "state": "merged",
            "title": f"[pr](https://evil.example/pr) ![pr]({pixel}/pixel-pr)",
            "url": "javascript:alert(document.domain)", "merge_commit_sha": "c" * 40,
            "commit_shas": ["c" * 40], "created_at": t, "merged_at": t,
        }])
        w.warn("shallow_clone", f"[warn](https://evil.example/warn) ![w]({pixel}/pixel-warning)")
        result = {"level": 0, "capabilities": [], "levels": [], "principles": [],
                  "next_steps": [{"capability": "[cap](https://evil.example/cap)",
                                  "action": f"![act]({pixel}/pixel-action) [act](https://evil.example/act)"}]}
        w.upsert("maturity_assessments", [{
            "id": "a1", "target": f"[target](https://evil.example/target) ![t]({pixel}/pixel-target)",
            "sources": ["x"], "revisions": ["r"], "kind": "point", "period": None, "as_of": t,
            "assessed_at": t, "level": 0, "answers_file": None, "result": json.dumps(result),
        }])
    with pytest.raises(RuntimeError), open_writer(db, source="[src](https://evil.example/src)",
                                                  target=f"![run]({pixel}/pixel-run)"):
        raise RuntimeError(f"[failed](https://evil.example/failed) ![f]({pixel}/pixel-failed)")
    return db


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_store(tmp_path_factory.mktemp("hostile"), 9)


@pytest.fixture
def use_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def _use(db: Path, config: Path | None = None) -> None:
        monkeypatch.setenv("GITOPS_DORA_DB", str(db))
        for name in ("GITOPS_DORA_CONFIG", "GITOPS_DORA_REQUIRE_LOGIN", "GITOPS_DORA_WARMUP"):
            monkeypatch.delenv(name, raising=False)
        if config is not None:
            monkeypatch.setenv("GITOPS_DORA_CONFIG", str(config))

    yield _use


def open_page(page: str, **params: str) -> AppTest:
    at = start_page(page, timeout=120, **params)
    if page != "overview":
        assert [t.value for t in at.title][-1:] != ["Overview"], f"did not switch to {page}"
    return at


def markdown_sources(at: AppTest) -> list[tuple[str, str]]:
    """(element kind, Markdown source) of everything on the page that Streamlit renders as Markdown."""
    found: list[tuple[str, str]] = []
    for kind in ("markdown", "caption", "warning", "error", "info", "success", "title", "header",
                 "subheader", "toast"):
        for e in getattr(at, kind):
            badge = re.fullmatch(r":[a-z]+-badge\[(.*)\]", str(e.value))   # st.badge: the page's directive
            found.append(("badge label", badge.group(1)) if badge else (kind, str(e.value)))
    found += [("metric label", m.label) for m in at.metric]
    found += [("expander label", e.label) for e in at.expander]
    found += [("tab label", t.label) for t in at.tabs]
    found += [(f"{kind} label", w.label) for kind in ("button", "selectbox", "radio", "text_input")
              for w in getattr(at, kind)]
    return found


PAGE_MARKUP = frozenset({"strong_open", "bullet_list_open"})  # the pages' own bold labels and lists


def shown_text(at: AppTest) -> str:
    """Everything the Markdown elements show, after checking none of them lets data act as Markup."""
    assert not at.exception, [e.message for e in at.exception]
    texts = []
    for kind, source in markdown_sources(at):
        try:
            texts.append(rendered(source, allow=PAGE_MARKUP))
        except Unsafe as exc:
            raise AssertionError(f"{kind}: {exc}") from None
    return "\n".join(texts)


# the hostile store's deployments are on 2026-03-02..06; the window starts where the default one
# does (the 90 days up to the day after the newest deployment), so the page that falls back to the
# default since (a bad `since` parameter below) asks for the same window as the one that drops a bad
# `team`, and finds its engine results computed (one Overview's engine runs fewer, ~1 CPU-s)
WINDOW = {"since": (default_window(date(2026, 3, 6), date(2026, 3, 6))[0]).isoformat(), "until": "2026-04-01"}


def test_hostile_names_render_as_literal_text_on_every_page(hostile_db: Path, use_db: Any) -> None:
    use_db(hostile_db)
    pixel = "http://127.0.0.1:9"
    env = image_env(9)
    overview = open_page("overview", service=LINK_SERVICE, **WINDOW)
    text = shown_text(overview)
    assert overview.query_params["service"] in ([LINK_SERVICE], LINK_SERVICE)   # accepted: it is in the data
    assert f"Environment: {env}" in text                     # the subheader, as its literal name
    assert LINK_SERVICE in text                              # the window caption's scope
    assert "[target](https://evil.example/target)" in text   # the maturity caption
    assert not overview.sidebar.warning

    deployments = open_page("deployments", deployment="dep-1", **WINDOW)
    text = shown_text(deployments)
    assert f"{LINK_SERVICE} → {env} at" in text              # the drill-down header, literally
    assert not deployments.warning
    # the changes and PRs are tables (text cells): no link column turns a data URL into a link
    changes = next(df.value for df in deployments.dataframe if "subject" in df.value.columns)
    assert changes["subject"].iloc[0] == f"[commit](https://evil.example/c) ![c]({pixel}/pixel-commit)"
    for df in deployments.dataframe:
        for spec in (df.proto.columns and json.loads(df.proto.columns) or {}).values():
            assert (spec.get("type_config") or {}).get("type") not in ("link", "image"), spec
    downloads = [b.proto.url for b in deployments.get("download_button")]
    assert downloads

    health = open_page("data_health")
    text = shown_text(health)
    assert "[src](https://evil.example/src)" in text and f"![run]({pixel}/pixel-run)" in text  # failed run
    assert any("failed on their last run" in e.value for e in health.error)

    maturity = open_page("maturity")
    text = shown_text(maturity)
    assert "[cap](https://evil.example/cap)" in text          # a stored next step, as text
    assert f"![act]({pixel}/pixel-action)" in text

    for page in ("throughput", "stability"):
        shown_text(open_page(page, **WINDOW))


@pytest.mark.parametrize(
    ("page", "params", "literal"),
    [
        ("overview", {"team": "[t](https://evil.example/t)"}, "team='[t](https://evil.example/t)'"),
        ("overview", {"environment": "![e](http://127.0.0.1:9/pixel-param)"},
         "environment='![e](http://127.0.0.1:9/pixel-param)'"),
        ("overview", {"since": ":red[x] $a$ <img src=x>"}, "since=':red[x] $a$ <img src=x>'"),
        ("deployments", {"deployment": "[d](https://evil.example/d)"}, "deployment='[d](https://evil.example/d)'"),
    ],
)
def test_url_parameters_with_markdown_show_literally(
    hostile_db: Path, use_db: Any, page: str, params: dict[str, str], literal: str
) -> None:
    use_db(hostile_db)
    at = open_page(page, **{**WINDOW, **params})
    text = shown_text(at)
    assert literal in text, text
    warnings = [w.value for w in at.warning] + [w.value for w in at.sidebar.warning]
    assert any(literal in rendered(w) for w in warnings), warnings


# --- the self-assessment answers --------------------------------------------------------------------


@pytest.fixture
def captured_downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, str | None]]:
    """Every (data, file name) the page hands to Streamlit's media storage for a download."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen: list[tuple[bytes, str | None]] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self: Any, path_or_data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
        if isinstance(path_or_data, bytes):
            seen.append((path_or_data, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".files" not in p.parts}


def answer_some(at: AppTest) -> None:
    at.radio(key="ans-declarative-iac").set_value("yes")
    at.radio(key="ans-progressive-delivery").set_value("no")
    at.text_input(key="note-progressive-delivery").set_value("../../etc/passwd ![n](http://127.0.0.1:9/n)")
    at.run()


def test_answers_are_a_download_and_nothing_is_written_on_the_server(
    tmp_path: Path, use_db: Any, captured_downloads: list[tuple[bytes, str | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assessment.answers import load_answers

    monkeypatch.chdir(tmp_path)
    use_db(tmp_path / "missing.ducklake")
    before = tree(tmp_path)
    at = open_page("maturity")
    # no field takes a path: every text input is a capability's note
    assert all(str(t.key).startswith("note-") for t in at.text_input), [t.key for t in at.text_input]
    assert not [b for b in at.button if b.key == "answers-save"]       # no answers_dir: no save button
    at.session_state["answers-path"] = str(tmp_path / "planted.yaml")   # the old widget's key, injected
    answer_some(at)
    assert not at.exception and not at.error
    assert tree(tmp_path) == before                                     # nothing written anywhere
    data, name = captured_downloads[-1]
    assert name == "maturity-answers.yaml"
    got = tmp_path.parent / f"{tmp_path.name}-download.yaml"            # what the browser would save
    got.write_bytes(data)
    answers = load_answers(got)
    assert {k: (a.value, a.note) for k, a in answers.items()} == {
        "declarative-iac": (True, None),
        "progressive-delivery": (False, "../../etc/passwd ![n](http://127.0.0.1:9/n)"),
    }
    assert yaml.safe_load(data)["answers"]["declarative-iac"] == "yes"


def write_config(path: Path, answers_dir: str) -> Path:
    path.write_text(f"dashboard:\n  answers_dir: {json.dumps(answers_dir)}\n")
    return path


def test_answers_folder_receives_only_a_fixed_name(tmp_path: Path, use_db: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from assessment.answers import load_answers

    site = tmp_path / "site"
    (site / "answers").mkdir(parents=True)
    config = write_config(site / "gitops-dora.yaml", "answers")          # relative to the config file
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    use_db(tmp_path / "missing.ducklake", config)
    before = tree(tmp_path)
    at = open_page("maturity")
    at.session_state["answers-path"] = str(tmp_path / "planted.yaml")
    answer_some(at)
    at.button(key="answers-save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    new = tree(tmp_path) - before
    assert len(new) == 1, new
    (written,) = new
    assert re.fullmatch(r"site/answers/maturity-answers-\d{8}T\d{6}Z\.yaml", written), written
    assert any(Path(written).name in s.value for s in at.success)
    answers = load_answers(tmp_path / written)
    assert answers["declarative-iac"].value is True
    assert answers["progressive-delivery"].note == "../../etc/passwd ![n](http://127.0.0.1:9/n)"
    at.button(key="answers-save").click().run()                          # a second save: a new file
    assert len(tree(tmp_path) - before) == 2


def test_answers_folder_that_does_not_exist_is_refused(tmp_path: Path, use_db: Any) -> None:
    config = write_config(tmp_path / "gitops-dora.yaml", str(tmp_path / "nowhere"))
    use_db(tmp_path / "missing.ducklake", config)
    before = tree(tmp_path)
    at = open_page("maturity")
    answer_some(at)
    at.button(key="answers-save").click().run()
    assert any("does not exist" in e.value for e in at.error)
    assert tree(tmp_path) == before


def test_save_answers_never_leaves_the_folder_or_replaces_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "answers"
    folder.mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text("untouched\n")
    now = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
    (folder / file_name(now)).symlink_to(outside)                 # planted under the next name
    (folder / file_name(now, 2)).write_text("earlier\n")
    path = save_answers(folder, "answers: {}\n", now=now)
    assert path == folder / file_name(now, 3)
    assert path.read_text() == "answers: {}\n"
    assert outside.read_text() == "untouched\n"
    assert (folder / file_name(now, 2)).read_text() == "earlier\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(file_name(now, n) for n in (1, 2, 3))
    with pytest.raises(AnswersFolderError, match="does not exist"):
        save_answers(tmp_path / "missing", "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(AnswersFolderError, match="not a folder"):
        save_answers(tmp_path / "file", "x")


def test_answers_folder_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "gitops-dora.yaml"
    assert answers_folder("answers", config) == tmp_path / "conf" / "answers"
    assert answers_folder(str(tmp_path / "abs"), config) == tmp_path / "abs"
    assert answers_folder(None, config) is None and answers_folder("  ", config) is None


# --- login -----------------------------------------------------------------------------------------

AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "gitops-dora", "client_secret": "s", "server_metadata_url":
        "https://idp.example/.well-known/openid-configuration"}


def assert_no_data(at: AppTest) -> None:
    assert not at.exception
    assert not [t.value for t in at.title if t.value != "gitops-dora"]    # no page ran
    assert not at.sidebar.selectbox and not at.dataframe and not at.metric
    assert LINK_SERVICE not in shown_text(at)


def test_login_required_without_auth_section_shows_nothing(hostile_db: Path, use_db: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    use_db(hostile_db)
    monkeypatch.setenv("GITOPS_DORA_REQUIRE_LOGIN", "1")
    at = open_page("overview")
    assert any("no [auth] section" in e.value for e in at.error)
    assert_no_data(at)


def test_login_switch_in_the_config(hostile_db: Path, use_db: Any, tmp_path: Path) -> None:
    config = tmp_path / "gitops-dora.yaml"
    config.write_text("dashboard:\n  login: true\n")
    use_db(hostile_db, config)
    at = open_page("overview")
    assert any("Login is required" in e.value for e in at.error)
    assert_no_data(at)


def test_login_without_authlib_fails_closed(hostile_db: Path, use_db: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards import auth

    monkeypatch.setattr(auth, "authlib_installed", lambda: False)
    use_db(hostile_db)
    monkeypatch.setenv("GITOPS_DORA_REQUIRE_LOGIN", "1")
    at = new_app(120)
    at.secrets["auth"] = AUTH
    at.run()
    assert any("Authlib is not installed" in e.value for e in at.error)
    assert_no_data(at)


def test_login_page_then_the_signed_in_dashboard(hostile_db: Path, use_db: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit.user_info

    from dashboards import auth

    monkeypatch.setattr(auth, "authlib_installed", lambda: True)   # Authlib is an optional extra
    use_db(hostile_db)
    monkeypatch.setenv("GITOPS_DORA_REQUIRE_LOGIN", "1")
    at = new_app(120)
    at.secrets["auth"] = AUTH
    at.query_params.update(WINDOW)
    at.run()
    assert [b.label for b in at.button] == ["Log in"]
    assert_no_data(at)
    # the identity Streamlit puts in st.user after the OIDC callback
    monkeypatch.setattr(streamlit.user_info, "_get_user_info",
                        lambda: {"is_logged_in": True, "email": "[me](https://evil.example/me)"})
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Overview"]
    assert at.metric
    text = shown_text(at)
    assert "Signed in as [me](https://evil.example/me)" in text
    assert [b.key for b in at.sidebar.button] == ["auth-logout"]


def test_named_providers_get_one_button_each() -> None:
    from dashboards.auth import providers

    assert providers({"client_id": "x", "client_kwargs": {"prompt": "login"}}) == [None]
    assert providers({"redirect_uri": "u", "google": {"client_id": "g"}, "okta": {"client_id": "o"}}) == \
        ["google", "okta"]


# --- `gitops-dora dashboard --host` ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_stderr_line(tmp_path: Path, host: str, env: dict[str, str] | None = None, *,
                      process: bool = False) -> str:
    """Run `gitops-dora dashboard --host HOST`, return its first stderr warning line ("" if none).

    ``process``: a real process, stopped once it printed its URL (the line it prints after any
    warning, just before it execs Streamlit): the warning reaches the process's stderr. Otherwise
    the command runs in this process up to its exec (tests/dashboard_server.py, ``dashboard_command``:
    the same code, without a process's 0.5-1 CPU-s of start-up), which must then exec Streamlit
    bound to HOST."""
    base = child_env(drop=("GITOPS_DORA_", "STREAMLIT_"))
    base["HOME"] = str(tmp_path)                      # no ~/.streamlit/secrets.toml of the user's
    if not (tmp_path / "x.ducklake").exists():
        with open_writer(tmp_path / "x.ducklake", source="test"):
            pass                                      # a store, so the only warning is about the bind
    argv = ["--db", str(tmp_path / "x.ducklake"), "dashboard", "--host", host, "--port", str(free_port())]
    if not process:
        run = dashboard_command(argv, env={**base, **(env or {})}, cwd=tmp_path)
        assert run.result.returncode == 0, run.result.stderr
        assert "gitops-dora dashboard on" in run.result.stdout, run.result.stdout
        assert run.argv is not None and run.argv[run.argv.index("--server.address") + 1] == host, run.argv
        err = run.result.stderr
    else:
        proc = subprocess.Popen([CLI, *argv], cwd=tmp_path, env={**base, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            url = proc.stdout.readline()              # printed after any warning, just before exec
            assert "gitops-dora dashboard on" in url, url
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    return lines[0] if lines else ""


def test_open_bind_without_login_warns_on_stderr(tmp_path: Path) -> None:
    line = first_stderr_line(tmp_path, "0.0.0.0", process=True)     # on the real process's stderr
    assert line.startswith("warning: serving on 0.0.0.0 without login")
    assert first_stderr_line(tmp_path, "127.0.0.1") == ""
    assert first_stderr_line(tmp_path, "localhost") == ""


def test_open_bind_warning_names_what_login_still_lacks(tmp_path: Path) -> None:
    from analytics.cli.cmd_dashboard import exposure_warning
    from dashboards.auth import authlib_installed

    line = first_stderr_line(tmp_path, "0.0.0.0", {"GITOPS_DORA_REQUIRE_LOGIN": "1"})
    assert "no [auth] section" in line
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(textwrap.dedent("""\
        [auth]
        redirect_uri = "https://dora.example/oauth2callback"
        cookie_secret = "not-a-real-secret"
        client_id = "gitops-dora"
        client_secret = "not-a-real-secret"
        server_metadata_url = "https://idp.example/.well-known/openid-configuration"
        """))
    line = first_stderr_line(tmp_path, "0.0.0.0", {"GITOPS_DORA_REQUIRE_LOGIN": "1"})
    if authlib_installed():
        assert line == ""
    else:
        assert "Authlib is not installed" in line
    assert exposure_warning("::1", False) is None and exposure_warning("[::1]", False) is None
    assert exposure_warning("10.0.0.5", False) is not None
