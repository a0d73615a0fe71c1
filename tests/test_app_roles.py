"""Every page under every role (AppTest): the page set, direct navigation to a forbidden page, sign-in and
session rules, single sign-on, the admin pages, and the audit of what the pages do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from beatmap import access, accounts, snapshot, store
from beatmap.ingest import load_areas
from beatmap.settings import Settings
from beatmap.ui import auth
from beatmap.ui.safe import md_escape
from tests.conftest import APP, ROOT, app_as, import_rows, load_two_beats, metric_frame, square

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

PASSWORD = "correct horse battery staple"
#: Page key -> file, and the title it shows (None: a page of another piece of work, title not pinned here).
PAGE_FILES = {
    "coverage": ("beatmap/ui/pages/coverage.py", "Coverage"),
    "route": ("beatmap/ui/pages/route.py", None),
    "log_visit": ("beatmap/ui/pages/log_visit.py", None),
    "heatmap": ("beatmap/ui/pages/heatmap.py", "Presence heat map"),
    "import": ("beatmap/ui/pages/import_data.py", "Import"),
    "publish": ("beatmap/ui/pages/publish.py", "Publish the public map"),
    "users": ("beatmap/ui/pages/admin_users.py", "Users"),
    "audit": ("beatmap/ui/pages/admin_audit.py", "Audit log"),
    "settings": ("beatmap/ui/pages/admin_settings.py", "Settings"),
    "public": ("beatmap/ui/pages/public.py", "Police presence outside enforcement"),
}
#: Pages whose files are in the checkout (route and log_visit arrive with the visits work).
PRESENT = [key for key, (path, _) in PAGE_FILES.items() if (ROOT / path).exists()]
ACCOUNTS = {  # name -> role, beats, all beats, officer id
    "boss": ("admin", [], False, None),
    "lt": ("supervisor", [], True, None),
    "sgt": ("supervisor", ["A"], False, None),
    "ofc": ("officer", ["A"], False, "O1"),
}
ROLE_OF = {None: "public", **{name: spec[0] for name, spec in ACCOUNTS.items()}}


@pytest.fixture
def city(tmp_path, monkeypatch, settings):
    """Beats A and B; visits by O1 and O2 in A; enforcement in B; one account per role; nothing published."""
    db = tmp_path / "roles.db"
    engine = load_two_beats(store.open_store(db), tmp_path, settings=settings)
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol,O{1 + d % 2}" for d in range(1, 21)]
    rows += [f"2026-03-{d:02d}T22:00,41.87689,-87.63150,enforcement," for d in range(1, 6)]
    import_rows(engine, tmp_path, rows, settings=settings, header="occurred_at,lat,lon,kind,officer_id")
    for name, (role, beats_, every, officer_id) in ACCOUNTS.items():
        accounts.add_user(
            engine,
            name,
            role=role,
            beats=beats_,
            all_beats=every,
            officer_id=officer_id,
            password=PASSWORD,
            actor="test",
        )
    monkeypatch.setenv("BEATMAP_DB", str(db))
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(tmp_path / "public"))
    return engine


@pytest.fixture(autouse=True)
def no_maps(maps):
    """streamlit-folium is opaque to AppTest: the one seam that calls it answers with no click (none is set)."""


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def audit_actions(engine, actor: str | None = None) -> list[tuple[str, str, str | None, dict]]:
    query = select(store.audit_log).order_by(store.audit_log.c.audit_id)
    if actor:
        query = query.where(store.audit_log.c.actor == actor)
    with engine.connect() as conn:
        return [
            (r["actor"], r["action"], r["target"], json.loads(r["details"])) for r in conn.execute(query).mappings()
        ]


@pytest.mark.parametrize("name", [None, "ofc", "sgt", "lt", "boss"])
def test_every_page_under_every_role(city, name):
    """Each allowed page renders; each forbidden one is not in the navigation, so switching to it fails."""
    user = accounts.get_user(city, name) if name else None
    allowed = [p for p in access.pages_for(user) if p in PRESENT]
    at = app_as(name).run()
    assert not at.exception, at.exception
    first_title = PAGE_FILES[allowed[0]][1]
    assert first_title is None or titles(at) == [first_title]
    for page in PRESENT:
        path, title = PAGE_FILES[page]
        if page in allowed:
            at.switch_page(path).run()
            assert not at.exception, (page, at.exception)
            assert title is None or title in titles(at), (page, titles(at))
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(path)


@pytest.mark.parametrize("name", [None, "ofc", "sgt", "boss"])
def test_a_forbidden_page_opened_by_its_address_shows_none_of_it(city, name):
    """A fresh session asking for a page by its URL path gets the role's own first page instead."""
    user = accounts.get_user(city, name) if name else None
    allowed = access.pages_for(user)
    for page in PRESENT:
        path, title = PAGE_FILES[page]
        if page in allowed or title is None:
            continue
        at = app_as(name)
        at.switch_page(path).run()  # before any run: the page's URL path, as a typed address
        assert not at.exception, at.exception
        assert title not in titles(at), (name, page, titles(at))
        assert titles(at) == [PAGE_FILES[allowed[0]][1]]


def test_a_role_change_closes_pages_at_the_next_page_load(city):
    at = app_as("sgt").run()
    at.switch_page(PAGE_FILES["heatmap"][0]).run()
    assert "Presence heat map" in titles(at)
    accounts.set_role(city, "sgt", "officer", actor="cli:test")
    at.run()
    assert not at.exception
    assert "Presence heat map" not in titles(at) and titles(at) == ["Coverage"]


def test_officer_sees_their_beat_without_officer_figures_or_exports(city):
    at = app_as("ofc").run()
    assert at.selectbox[0].options == ["All my beats", "A"]
    assert at.selectbox[0].value == "A" and [t.label for t in at.tabs]  # one beat: the page opens on it
    assert access.officer_id_of(at.session_state[auth.USER]) == "O1"  # the id their visits log under
    assert not any(e.label == "Export" for e in at.expander)
    at.selectbox[0].select("A").run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Trend", "When visits happen"]
    shown = [df.value for df in at.dataframe]
    assert all("officer_id" not in frame.columns and "officers" not in frame.columns for frame in shown)
    assert all(set(frame.get("beat_id", pd.Series(["A"]))) <= {"A"} for frame in shown)


def lt_opens_on_the_city(at: AppTest) -> bool:
    return at.selectbox[0].value == "Whole city"


def test_sergeant_sees_assigned_beats_with_officer_figures_and_exports(city):
    at = app_as("sgt").run()
    assert at.selectbox[0].options == ["All my beats", "A"]
    assert any(e.label == "Export" for e in at.expander)
    assert lt_opens_on_the_city(app_as("lt").run())
    at.selectbox[0].select("A").run()
    assert [t.label for t in at.tabs] == ["Trend", "When visits happen", "Officers"]
    assert not at.tabs[2].dataframe  # only the chosen tab is drawn (the first)
    at.session_state["f_beat_tab"] = "Officers"  # the sergeant opens the Officers tab
    at.run()
    assert not at.exception
    officers = at.tabs[2].dataframe[0].value
    assert set(officers["officer_id"]) == {"O1", "O2"}
    lieutenant = app_as("lt").run()
    assert lieutenant.selectbox[0].options == ["Whole city", "A", "B"]


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_form_name").input(name)
    at.text_input(key="auth_form_password").input(password)
    return next(b for b in at.button if b.label == "Sign in").click().run()


def test_sign_in_form_wrong_password_lockout_and_sign_out(city):
    at = app_as(None).run()
    assert titles(at) == ["Police presence outside enforcement"]
    sign_in(at, "sgt", "not the password")
    assert [e.value for e in at.error] == [md_escape("wrong name or password.")]
    sign_in(at, "sgt", PASSWORD)
    assert not at.exception and titles(at) == ["Coverage"]
    assert at.session_state[auth.SESSION_NAME] == "sgt"
    assert any("Signed in as sgt (supervisor)" in t.value for t in at.text)
    next(b for b in at.button if b.label == "Sign out").click().run()
    assert titles(at) == ["Police presence outside enforcement"] and auth.SESSION_NAME not in at.session_state
    for attempt in range(5):
        sign_in(at, "ofc", f"guess {attempt}")
    assert any("account locked until" in e.value and "after 5 failed attempts" in e.value for e in at.error)
    sign_in(at, "ofc", PASSWORD)
    assert any("account locked until" in e.value for e in at.error) and titles(at) == [
        "Police presence outside enforcement"
    ]
    actions = [a for _, a, target, _ in audit_actions(city) if target in ("sgt", "ofc") and a.startswith("sign")]
    assert actions == [
        "sign_in.failure",
        "sign_in",
        "sign_out",
        *["sign_in.failure"] * 4,
        "sign_in.lockout",
        "sign_in.refused",
    ]


def test_an_expired_session_or_a_disabled_account_ends_the_session(city, settings):
    at = app_as("sgt", signed_in_at=datetime.now(UTC) - timedelta(minutes=settings.session_minutes + 1)).run()
    assert titles(at) == ["Police presence outside enforcement"]
    assert any("Your session ended after 480 minutes" in w.value for w in at.warning)
    assert audit_actions(city, "sgt")[-1][1:] == ("sign_out", "sgt", {"reason": "session expired"})
    at = app_as("ofc").run()
    assert titles(at) == ["Coverage"]
    accounts.disable_user(city, "ofc", actor="cli:test")
    at.run()
    assert titles(at) == ["Police presence outside enforcement"] and at.session_state[auth.USER] is None
    assert any("disabled" in w.value for w in at.warning)


def test_a_password_reset_ends_the_sessions_begun_before_it(city):
    at = app_as("sgt", signed_in_at=datetime.now(UTC) - timedelta(minutes=5)).run()
    assert titles(at) == ["Coverage"]
    accounts.set_password(city, "sgt", "a new passphrase for the sergeant", actor="boss")
    at.run()
    assert titles(at) == ["Police presence outside enforcement"]
    assert any("Your password was changed" in w.value for w in at.warning)
    assert audit_actions(city, "sgt")[-1][1:] == ("sign_out", "sgt", {"reason": "password changed"})
    at = app_as("sgt").run()  # signed in again after the change
    assert titles(at) == ["Coverage"]


def test_first_run_creates_the_first_administrator_without_a_default_password(tmp_path, monkeypatch):
    monkeypatch.setenv("BEATMAP_DB", str(tmp_path / "fresh.db"))
    monkeypatch.setenv("BEATMAP_PUBLIC_DIR", str(tmp_path / "public"))
    at = app_as(None).run()
    assert any("No administrator exists yet" in i.value for i in at.info)
    assert not any(b.label == "Sign in" for b in at.button)
    engine = store.open_store(tmp_path / "fresh.db")
    code = auth.setup_code(engine)  # what the server printed on its console when the form first showed
    assert len(code) == 12 and auth.setup_code(engine) == code

    def submit(setup_code: str, again: str = PASSWORD) -> None:  # the form clears on every submit
        at.text_input(key="auth_setup_code").input(setup_code)
        at.text_input(key="auth_admin_name").input("chief")
        at.text_input(key="auth_admin_password").input(PASSWORD)
        at.text_input(key="auth_admin_again").input(again)
        next(b for b in at.button if b.label == "Create and sign in").click().run()

    submit("not-the-code")
    assert any("not the setup code" in e.value for e in at.error) and not accounts.has_admin(engine)
    submit(code, again=PASSWORD + "x")
    assert any("differ" in e.value for e in at.error)
    submit(code)
    assert not at.exception and titles(at) == ["Users"]
    assert accounts.has_admin(engine)
    at = app_as(None).run()  # from now on: the sign-in form, not the setup form
    assert any(b.label == "Sign in" for b in at.button) and not any(b.label == "Create and sign in" for b in at.button)


def test_admin_adds_an_account_sees_its_password_once_and_it_is_audited(city):
    at = app_as("boss").run()
    form = at.expander[0]
    form.text_input[0].input("new-officer")
    form.selectbox[0].select("officer")
    form.multiselect[0].select("B")
    next(b for b in at.button if b.label == "Add account").click().run()
    assert not at.exception
    [code] = at.code
    assert len(code.value) == 20
    assert accounts.authenticate(city, "new-officer", code.value, now=datetime.now(UTC), settings=Settings()).beats == (
        "B",
    )
    assert "new-officer" in set(at.dataframe[-1].value["name"])
    assert audit_actions(city, "boss")[-1][1:3] == ("user.add", "new-officer")
    at.run()
    assert not at.code  # shown once
    account = next(s for s in at.selectbox if s.label == "Account")
    account.select("ofc").run()
    next(b for b in at.button if b.label == "Disable account").click().run()
    assert accounts.get_user(city, "ofc") is None
    assert audit_actions(city, "boss")[-1][1:3] == ("user.disable", "ofc")


def test_audit_page_filters_and_offers_no_way_to_edit(city):
    app_as("sgt").run()  # nothing audited by only looking
    at = app_as("boss").run()
    at.switch_page(PAGE_FILES["audit"][0]).run()
    assert not at.exception and titles(at) == ["Audit log"]
    shown = at.dataframe[0].value
    assert set(shown["action"]) == {"import.areas", "import.activity", "user.add"}
    assert not at.data_editor and [b.label for b in at.button if b.label != "Sign out"] == []
    assert {w.label for w in at.main.text_input} == {"Who"}
    at.text_input(key="audit_actor").input("nobody").run()
    assert at.dataframe[0].value.empty
    at.text_input(key="audit_actor").input("").run()
    at.selectbox(key="audit_action").select("user").run()
    assert set(at.dataframe[0].value["target"]) == set(ACCOUNTS)


def test_settings_page_is_read_only(city):
    at = app_as("boss").run()
    at.switch_page(PAGE_FILES["settings"][0]).run()
    assert not at.exception
    settings_table = at.dataframe[0].value
    assert {"session_minutes", "sign_in_max_failures", "timezone"} <= set(settings_table["setting"])
    assert not at.main.button and not at.main.text_input and not at.data_editor


AUTH_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "test-only",
        "client_id": "beatmap",
        "client_secret": "test-only",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    }
}


def test_single_sign_on_maps_the_identity_to_a_role(city):
    accounts.set_beats(city, "sgt", ["A"], actor="cli:test")
    with store.transaction(city) as conn:
        conn.execute(store.users_table.update().where(store.users_table.c.name == "sgt").values(email="sgt@pd.example"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": "sgt@pd.example", "name": "Sgt", "roles": ["admin"]}
    at.run()
    assert not at.exception and titles(at) == ["Coverage"]
    assert at.selectbox[0].options == ["All my beats", "A"]  # the account by e-mail decides, not the claim
    assert audit_actions(city, "sgt")[-1][1] == "sign_in"
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": "analyst@pd.example", "roles": "supervisor", "beats": ["B"]}
    at.run()
    assert at.selectbox[0].options == ["All my beats", "B"]
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": "visitor@pd.example"}
    at.run()
    assert titles(at) == ["Police presence outside enforcement"]
    assert any("has no role in beatmap" in w.value for w in at.warning)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": False}
    at.run()
    assert any(b.label == "Sign in with single sign-on" for b in at.button)


def test_user_text_is_escaped_in_page_markdown(city, tmp_path, settings):
    beats = metric_frame(
        {"beat_id": ["*bold* [x](javascript:alert(1)) <b> &amp;"], "geometry": [square(0, 0, 400)]}, "EPSG:4326"
    )
    beats.to_file(tmp_path / "odd.geojson")
    load_areas(city, tmp_path / "odd.geojson", settings=settings, grid_m=200)
    at = app_as("lt").run()
    beat = at.selectbox[0].options[1]
    at.selectbox[0].select(beat).run()
    at.session_state["f_block"] = store.read_blocks(city)["block_id"].iloc[0]  # as a click on the map would
    at.run()
    info = next(i.value for i in at.info if i.value.startswith("Selected block"))
    assert "\\*bold\\*" in info and "\\[x\\]\\(javascript\\:alert\\(1\\)\\)" in info and "\\<b\\>" in info
    assert "\\&amp;" in info  # an entity reference shows as typed, not as "&"


def test_server_hardening_stays_in_place():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"].get("enableXsrfProtection", True) is True
    assert config["server"]["maxUploadSize"] <= 200
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text().splitlines()
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text())
    assert set(example["auth"]) >= {
        "redirect_uri",
        "cookie_secret",
        "client_id",
        "client_secret",
        "server_metadata_url",
    }


def test_a_supervisor_of_all_beats_publishes_from_the_page_after_reading_the_warnings(city, tmp_path):
    at = app_as("lt").run()
    at.switch_page(PAGE_FILES["publish"][0]).run()
    assert not at.exception, at.exception
    # The city's activity is in March; today's period holds none: said before anything is published.
    assert any("holds no activity" in w.value for w in at.warning)
    publish = next(b for b in at.button if b.label == "Publish now")
    assert publish.disabled  # until the warnings are acknowledged
    assert any("Nothing has been published yet" in i.value for i in at.info)
    preview = at.dataframe[0].value
    assert list(preview["Beat"]) == ["A", "B"] and all(str(v).endswith("%") for v in preview["Coverage"])
    at.checkbox[0].check().run()
    next(b for b in at.button if b.label == "Publish now").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Published:") for s in at.success)
    assert snapshot.check_snapshot(tmp_path / "public", settings=Settings()) == []
    history = at.dataframe[-1].value
    assert len(history) == 1 and history.loc[0, "By"] == "lt"
    assert [a for _, a, _, _ in audit_actions(city, "lt") if a.startswith("publish")] == ["publish"]


def test_a_supervisor_of_some_beats_sees_the_preview_but_may_not_publish(city, tmp_path):
    at = app_as("sgt").run()
    at.switch_page(PAGE_FILES["publish"][0]).run()
    at.checkbox[0].check().run()
    next(b for b in at.button if b.label == "Publish now").click().run()
    assert any("covers every beat" in e.value for e in at.error)
    assert not (tmp_path / "public").exists()


def test_the_import_page_offers_beats_and_blocks_to_supervisors_of_all_beats_only(city):
    sergeant = app_as("sgt").run()
    sergeant.switch_page(PAGE_FILES["import"][0]).run()
    assert not sergeant.exception
    buttons = [b.label for b in sergeant.button]
    assert "Import activity" in buttons and "Load beats and blocks" not in buttons
    assert any("supervisor of all beats" in c.value for c in sergeant.caption)
    lieutenant = app_as("lt").run()
    lieutenant.switch_page(PAGE_FILES["import"][0]).run()
    assert "Load beats and blocks" in [b.label for b in lieutenant.button]


def test_the_import_page_lists_a_supervisor_of_some_beats_the_imports_on_their_beats(city, tmp_path, settings):
    from beatmap.ingest import import_activity

    (tmp_path / "on-b.csv").write_text("occurred_at,lat,lon,kind\n2026-03-20T10:00,41.87689,-87.63150,foot_patrol\n")
    other = import_activity(city, tmp_path / "on-b.csv", settings=settings, actor="lt", source="elsewhere")
    at = app_as("sgt").run()
    at.switch_page(PAGE_FILES["import"][0]).run()
    assert not at.exception
    listed = at.dataframe[-1].value
    assert other.batch_id not in listed["batch_id"].tolist() and len(listed) >= 1
    assert any("on your beats, whoever imported them" in c.value for c in at.caption)


def test_the_publish_preview_shows_the_city_beats_then_a_beats_blocks(city, maps):
    drawn, _ = maps
    at = app_as("lt").run()
    at.switch_page(PAGE_FILES["publish"][0]).run()
    assert not at.exception, at.exception
    key, city_map, _ = drawn[-1]
    page = city_map.get_root().render()
    assert key == "publish-preview-" and '"beat_id": "A"' in page and "block_id" not in page  # beats only
    next(s for s in at.selectbox if s.label == "Preview").select("A").run()
    key, beat_map, _ = drawn[-1]
    page = beat_map.get_root().render()
    assert key == "publish-preview-A" and '"block_id": "A_r1c1"' in page and '"beat_id": "B"' not in page
