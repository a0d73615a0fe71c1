"""User and file text on the pages: md_escape, and hostile ids rendered on every page (AppTest) with no link, no
image and no markup that would make a browser fetch anything."""

from __future__ import annotations

import re
from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from beatmap import accounts, audit, store
from beatmap.publish import publish_snapshot
from beatmap.ui.safe import md_escape
from tests.conftest import app_as, import_rows, load_two_beats

#: An image, a link, a bare URL, a www address, an e-mail address and an HTML image: none may become markup.
# Every kind of link Markdown or HTML could make, within the 128 characters an id may hold (with its blocks' suffix).
HOSTILE = (
    "![i](http://evil.io/i.png) [l](http://evil.io) http://evil.io/x www.evil.io a@evil.io <img src=http://evil.io/y>"
)
OFFICER_ID = "www.evil.example"
PASSWORD = "correct horse battery staple"
#: Markdown a browser would turn into a link, an image or an element (an escaped character is preceded by "\").
UNSAFE = [
    re.compile(p)
    for p in (r"(?<!\\)!\[", r"(?<!\\)\]\(", r"(?<!\\)<[A-Za-z/!]", r"(?<!\\)://", r"www\.", r"\w(?<!\\)@\w")
]


def unsafe_parts(markdown: str) -> list[str]:
    return [p.pattern for p in UNSAFE if p.search(markdown)]


@pytest.mark.parametrize(
    "text",
    [
        HOSTILE,
        "see https://evil.example",
        "www.evil.example/x",
        "a@evil.example",
        "<b>x</b>",
        "1. item",
        "- item",
        "title\n===",
    ],
)
def test_md_escape_leaves_no_link_image_or_markup(text):
    escaped = md_escape(text)
    assert unsafe_parts(escaped) == []
    assert re.sub(r"\\(.)", r"\1", escaped) == text  # unescaping gives the text back: nothing is lost


def markdown_shown(at: AppTest) -> list[str]:
    """Every piece of text the page renders as Markdown: headings, text, notes, messages and widget labels."""
    shown = [
        e.value
        for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")
        for e in getattr(at, kind)
    ]
    shown += [
        e.label
        for kind in ("button", "expander", "tabs", "metric", "selectbox", "radio", "text_input")
        for e in getattr(at, kind)
    ]
    return [str(s) for s in shown if s]


@pytest.fixture
def hostile_city(tmp_path, monkeypatch, settings):
    """Beat HOSTILE (its grid blocks carry the name) and B; an officer of it with a www officer id; a snapshot."""
    db = tmp_path / "hostile.db"
    engine = load_two_beats(store.open_store(db), tmp_path, settings=settings, ids=(HOSTILE, "B"))
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol,{OFFICER_ID}" for d in range(1, 9)]
    import_rows(engine, tmp_path, rows, settings=settings, header="occurred_at,lat,lon,kind,officer_id")
    accounts.add_user(engine, "lt", role="supervisor", all_beats=True, password=PASSWORD, actor="test")
    accounts.add_user(
        engine, "ofc", role="officer", beats=[HOSTILE], officer_id=OFFICER_ID, password=PASSWORD, actor="test"
    )
    accounts.add_user(engine, "boss", role="admin", password=PASSWORD, actor="test")
    audit.record(engine, actor="cli:test", action="export", target=HOSTILE, details={"what": HOSTILE})
    publish_snapshot(engine, tmp_path / "public", settings=settings, as_of=date(2026, 4, 20))
    monkeypatch.setenv("BEATMAP_DB", str(db))
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(tmp_path / "public"))
    return engine


def page(name: str | None, path: str, **state: object) -> AppTest:
    at = app_as(name).run()
    at.switch_page(path)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_hostile_ids_show_as_text_on_every_page(hostile_city, maps):
    block = store.read_blocks(hostile_city, beat_id=HOSTILE)["block_id"].iloc[0]
    tap = (41.87596, -87.63631)  # on the hostile beat
    pages = {
        "coverage": page("lt", "beatmap/ui/pages/coverage.py", f_beat=HOSTILE, f_block=block),
        "heatmap": page("lt", "beatmap/ui/pages/heatmap.py"),
        "route": page("ofc", "beatmap/ui/pages/route.py"),
        "log_visit": page("ofc", "beatmap/ui/pages/log_visit.py", **{"visit-point": tap, "visit-token": "t"}),
        "import": page("lt", "beatmap/ui/pages/import_data.py"),
        "users": page("boss", "beatmap/ui/pages/admin_users.py"),
        "audit": page("boss", "beatmap/ui/pages/admin_audit.py"),
        "settings": page("boss", "beatmap/ui/pages/admin_settings.py"),
        "public": page(None, "beatmap/ui/pages/public.py"),
    }
    shown_hostile = set()
    for name, at in pages.items():
        for text in markdown_shown(at):
            if "evil" in text or "www" in text:  # the page's own links (a skip link) are not user text
                assert unsafe_parts(text) == [], (name, text)
            if md_escape(HOSTILE) in text or md_escape(OFFICER_ID) in text:
                shown_hostile.add(name)
    # The pages that name the beat, its blocks or the officer in their text did show them (escaped).
    assert {"coverage", "log_visit"} <= shown_hostile, shown_hostile
    log_visit = markdown_shown(pages["log_visit"])
    assert f"Flagged blocks in beat {md_escape(HOSTILE)}" in log_visit
    assert f"Officer {md_escape(OFFICER_ID)}" in log_visit
    assert any(t.startswith(f"Block **{md_escape(HOSTILE)}\\_") for t in log_visit)
