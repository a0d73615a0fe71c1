"""What the pages say on an empty store: page-level guidance, never a command line, a flag or a temporary path."""

from __future__ import annotations

import re

import pytest

from beatmap import access, accounts, store
from tests.conftest import app_as

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

#: Page key -> file (every page a signed-in user may open).
PAGES = {
    "coverage": "beatmap/ui/pages/coverage.py",
    "route": "beatmap/ui/pages/route.py",
    "log_visit": "beatmap/ui/pages/log_visit.py",
    "heatmap": "beatmap/ui/pages/heatmap.py",
    "import": "beatmap/ui/pages/import_data.py",
    "publish": "beatmap/ui/pages/publish.py",
    "users": "beatmap/ui/pages/admin_users.py",
    "audit": "beatmap/ui/pages/admin_audit.py",
    "settings": "beatmap/ui/pages/admin_settings.py",
    "public": "beatmap/ui/pages/public.py",
}
#: A command of the command line ("beatmap import", "`beatmap demo`"), a flag ("--beat-id") or a temporary path.
COMMAND_LINE = re.compile(r"\bbeatmap |--|/tmp/")


def messages(at) -> list[str]:
    """Every piece of text the page shows a person: messages, captions, markdown, labels and their help."""
    shown = [
        e.value
        for kind in ("info", "warning", "error", "success", "caption", "markdown", "title", "header", "subheader")
        for e in getattr(at, kind)
    ]
    for kind in (
        "button",
        "text_input",
        "selectbox",
        "radio",
        "checkbox",
        "text_area",
        "number_input",
        "multiselect",
        "toggle",
    ):
        for widget in getattr(at, kind):
            shown += [widget.label, getattr(widget, "help", None) or ""]
    return [text for text in shown if isinstance(text, str)]


def assert_page_words(at, where: str, pattern: re.Pattern = COMMAND_LINE) -> None:
    assert not at.exception, (where, at.exception)
    said = messages(at)
    assert said, f"{where}: the page showed nothing"
    wrong = [text for text in said if pattern.search(text)]
    assert wrong == [], f"{where}: command-line words on the page: {wrong}"


@pytest.fixture
def empty_store(tmp_path, monkeypatch, maps):
    """A store with accounts and nothing else: no beats, no activity, nothing published."""
    db = tmp_path / "empty.db"
    engine = store.open_store(db)
    accounts.add_user(engine, "boss", role="admin", actor="test")
    accounts.add_user(engine, "lt", role="supervisor", all_beats=True, actor="test")
    accounts.add_user(engine, "ofc", role="officer", beats=["A"], officer_id="O1", actor="test")
    monkeypatch.setenv("BEATMAP_DB", str(db))
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(tmp_path / "public"))
    monkeypatch.setenv("BEATMAP_CACHE", str(tmp_path / "cache"))
    return engine


@pytest.mark.parametrize("name", ["lt", "ofc", "boss", None])
def test_no_page_names_a_command_or_a_flag_on_an_empty_store(empty_store, name):
    user = accounts.get_user(empty_store, name) if name else None
    at = app_as(name).run()
    assert_page_words(at, f"first page for {name}")
    for page in access.pages_for(user):
        at.switch_page(PAGES[page]).run()
        assert_page_words(at, f"{page} for {name}")


def test_the_empty_coverage_page_sends_people_to_the_import_page(empty_store):
    at = app_as("lt").run()
    assert any("**Import** page" in i.value for i in at.info), [i.value for i in at.info]


def test_the_first_administrator_form_names_no_command(tmp_path, monkeypatch, maps):
    monkeypatch.setenv("BEATMAP_DB", str(tmp_path / "fresh.db"))
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(tmp_path / "public"))
    at = app_as(None).run()
    assert any("No administrator exists yet" in i.value for i in at.info)
    assert_page_words(at, "first administrator form")


def test_a_publish_folder_problem_names_the_setting_not_a_flag(tmp_path, monkeypatch, maps, settings):
    from tests.conftest import import_rows, load_two_beats

    db = tmp_path / "city.db"
    engine = load_two_beats(store.open_store(db), tmp_path, settings=settings)
    import_rows(engine, tmp_path, ["2026-03-01T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
    accounts.add_user(engine, "boss", role="admin", actor="test")
    accounts.add_user(engine, "lt", role="supervisor", all_beats=True, actor="test")
    public = tmp_path / "public"
    public.mkdir()
    (public / "notes.txt").write_text("not a snapshot")  # publishing would replace this folder's contents
    monkeypatch.setenv("BEATMAP_DB", str(db))
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(public))
    at = app_as("lt").run()
    at.switch_page(PAGES["publish"]).run()
    if not at.checkbox[0].value:
        at.checkbox[0].check().run()
    next(b for b in at.button if b.label == "Publish now").click().run()
    errors = [e.value for e in at.error]
    assert any("The public folder" in e and "not empty" in e for e in errors), errors
    # (the folder is a setting, here under the test's /tmp: only commands and flags are looked for)
    assert_page_words(at, "publish into a folder that is not a snapshot", re.compile(r"\bbeatmap |--"))
