"""Accounts: hashing, generated passwords, account changes, sign-in with lockout, single sign-on mapping, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from beatmap import accounts, store
from beatmap.accounts import ADMIN, OFFICER, SUPERVISOR, User
from beatmap.errors import AccessError, InputError
from beatmap.settings import Settings
from tests.conftest import load_two_beats

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 09:00 in Chicago
PASSWORD = "correct horse battery staple"


@pytest.fixture
def areas(engine, tmp_path, settings):
    """A store with beats A and B."""
    return load_two_beats(engine, tmp_path, settings=settings)


def audit_rows(engine, action: str | None = None) -> list[dict]:
    query = select(store.audit_log).order_by(store.audit_log.c.audit_id)
    if action:
        query = query.where(store.audit_log.c.action == action)
    with engine.connect() as conn:
        return [dict(r) | {"details": json.loads(r["details"])} for r in conn.execute(query).mappings()]


def every_text_in_the_store(engine) -> str:
    """All text the audit log and users tables hold, to look for a password."""
    with engine.connect() as conn:
        rows = [*conn.execute(select(store.audit_log)).all(), *conn.execute(select(store.users_table)).all()]
    return "\n".join(str(v) for row in rows for v in row)


def test_hash_is_argon2id_salted_and_verifies():
    first, second = accounts.hash_password(PASSWORD), accounts.hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and PASSWORD not in first
    assert first != second  # salted
    assert accounts.verify_password(first, PASSWORD)
    assert not accounts.verify_password(first, PASSWORD + "!")
    assert not accounts.verify_password("not a hash", PASSWORD)


def test_generated_passwords_are_long_random_and_unambiguous():
    made = {accounts.generate_password() for _ in range(200)}
    assert len(made) == 200
    assert all(len(p) == 20 and p.isalnum() and not set(p) & set("0O1lI") for p in made)
    # A generated password never holds the account's name (check_password would refuse it): with a
    # one-letter name about half of all draws would, so 200 passwords test the redraw.
    assert not any("k" in accounts.generate_password(name="K").lower() for _ in range(200))


@pytest.mark.parametrize(("password", "problem"), [("short", "too short"), ("alice-is-the-best", "account name")])
def test_weak_passwords_are_refused(password, problem):
    with pytest.raises(InputError, match=problem):
        accounts.check_password(password, name="alice")


def test_add_user_generates_a_password_once_and_stores_only_its_hash(areas):
    user, password = accounts.add_user(areas, "Alice", role=OFFICER, beats=["B", "A"], actor="cli:test")
    assert user == User(name="alice", role=OFFICER, beats=("A", "B"), all_beats=False, officer_id="alice")
    assert password and accounts.authenticate(areas, "alice", password, now=NOW, settings=Settings()) == user
    assert password not in every_text_in_the_store(areas)
    listed = accounts.list_users(areas)
    assert "password_hash" not in listed.columns and listed.loc[0, "beats"] == "A, B"
    [entry] = audit_rows(areas, "user.add")
    assert entry["actor"] == "cli:test" and entry["target"] == "alice"
    assert entry["details"]["password"] == "generated" and entry["details"]["beats"] == ["A", "B"]


def test_a_chosen_password_is_not_returned_nor_logged(areas):
    user, generated = accounts.add_user(
        areas, "sgt", role=SUPERVISOR, all_beats=True, password=PASSWORD, actor="cli:test"
    )
    assert generated is None and user.all_beats
    assert PASSWORD not in every_text_in_the_store(areas)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a"}, "not valid"),
        ({"name": "bad name"}, "not valid"),
        ({"name": "<img src=x>"}, "not valid"),
        ({"role": "chief"}, "not one of"),
        ({"beats": ["Z"]}, "no beat 'Z'"),
        ({"email": "not-an-email"}, "not an e-mail"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(areas, kwargs, message):
    options = {"name": "ok-name", "role": OFFICER, "actor": "cli:test"} | kwargs
    with pytest.raises(InputError, match=message):
        accounts.add_user(areas, options.pop("name"), **options)
    assert accounts.list_users(areas).empty


def test_names_and_emails_are_unique(areas):
    accounts.add_user(areas, "alice", role=OFFICER, email="a@pd.example", actor="cli:test")
    with pytest.raises(InputError, match="already exists"):
        accounts.add_user(areas, "ALICE", role=OFFICER, actor="cli:test")
    with pytest.raises(InputError, match="e-mail"):
        accounts.add_user(areas, "alice2", role=OFFICER, email="A@pd.example", actor="cli:test")


def test_sign_in_and_lockout_after_repeated_failures(engine):
    settings = Settings(sign_in_max_failures=5, lockout_minutes=15)
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    for attempt in range(4):
        with pytest.raises(AccessError, match="wrong name or password"):
            accounts.authenticate(engine, "alice", f"guess {attempt}", now=NOW, settings=settings)
    with pytest.raises(AccessError, match="account locked until 09:15 after 5 failed attempts"):
        accounts.authenticate(engine, "alice", "guess 5", now=NOW, settings=settings)
    # Locked: even the right password is refused until the lock ends.
    with pytest.raises(AccessError, match="locked until 09:15"):
        accounts.authenticate(engine, "alice", PASSWORD, now=NOW + timedelta(minutes=14), settings=settings)
    user = accounts.authenticate(engine, "alice", PASSWORD, now=NOW + timedelta(minutes=15), settings=settings)
    assert user.name == "alice"
    row = accounts.list_users(engine).iloc[0]
    assert row["failed_attempts"] == 0 and row["locked_until"] is None
    actions = [r["action"] for r in audit_rows(engine) if r["action"].startswith("sign_in")]
    assert actions == ["sign_in.failure"] * 4 + ["sign_in.lockout", "sign_in.refused", "sign_in"]
    assert "guess" not in every_text_in_the_store(engine) and PASSWORD not in every_text_in_the_store(engine)


def test_an_unknown_name_gets_the_same_answer_and_is_audited(engine):
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    with pytest.raises(AccessError, match=r"^wrong name or password"):
        accounts.authenticate(engine, "mallory", PASSWORD, now=NOW, settings=Settings())
    [entry] = audit_rows(engine, "sign_in.failure")
    assert entry["target"] == entry["actor"] == "unknown account"
    assert entry["details"] == {"reason": "unknown name", "name_length": 7, "failed_attempts": 1, "client": "local"}


def test_a_lockout_holds_for_the_client_that_caused_it_only(engine):
    """Five wrong passwords from one place used to lock the officer out everywhere."""
    settings = Settings(sign_in_max_failures=5, lockout_minutes=15)
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    for attempt in range(4):
        with pytest.raises(AccessError, match="wrong name or password"):
            accounts.authenticate(engine, "alice", f"guess {attempt}", now=NOW, settings=settings, client="203.0.113.9")
    with pytest.raises(AccessError, match="account locked until 09:15"):
        accounts.authenticate(engine, "alice", "guess 5", now=NOW, settings=settings, client="203.0.113.9")
    with pytest.raises(AccessError, match="account locked"):
        accounts.authenticate(engine, "alice", PASSWORD, now=NOW, settings=settings, client="203.0.113.9")
    # Alice at the station is not locked out by someone guessing elsewhere.
    assert accounts.authenticate(engine, "alice", PASSWORD, now=NOW, settings=settings, client="10.0.0.5").name == (
        "alice"
    )
    # A new password lifts the lock everywhere.
    accounts.set_password(engine, "alice", PASSWORD + " again", actor="cli:test")
    assert (
        accounts.authenticate(
            engine, "alice", PASSWORD + " again", now=NOW, settings=settings, client="203.0.113.9"
        ).name
        == "alice"
    )


def test_unknown_and_known_names_get_the_same_answers(engine):
    """An unknown name used never to lock, so the fifth answer told which names exist; now both lock alike."""
    settings = Settings(sign_in_max_failures=3, lockout_minutes=15)
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    answers = {}
    for name in ("alice", "mallory"):
        seen = []
        for attempt in range(5):
            with pytest.raises(AccessError) as refused:
                accounts.authenticate(engine, name, f"guess {attempt}", now=NOW, settings=settings, client="x")
            seen.append(str(refused.value))
        answers[name] = seen
    assert answers["alice"] == answers["mallory"]
    assert answers["alice"][:2] == ["wrong name or password."] * 2 and "locked until 09:15" in answers["alice"][2]
    assert "mallory" not in every_text_in_the_store(engine)


def test_unknown_and_known_names_take_the_same_time(engine, monkeypatch):
    """Median time of 50 wrong sign-ins under a known name and 50 under unknown names (each from its own client,
    so none is locked): the same work is done, a password hash checked either way.  A cheap hash keeps the test
    short and makes any other difference in work stand out more, not less."""
    import statistics
    import time

    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    dummy = cheap.hash("a password nobody has")
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)
    monkeypatch.setattr(accounts, "_dummy_hash", lambda: dummy)
    settings = Settings(sign_in_max_failures=20)
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(50):
        for kind, name in (("known", "alice"), ("unknown", f"nobody{i}")):
            start = time.perf_counter()
            with pytest.raises(AccessError, match="wrong name or password"):
                accounts.authenticate(engine, name, "not it at all", now=NOW, settings=settings, client=f"c{i}")
            times[kind].append(time.perf_counter() - start)
    known, unknown = statistics.median(times["known"]), statistics.median(times["unknown"])
    assert abs(known - unknown) < 0.25 * max(known, unknown), (known, unknown)


def test_a_password_typed_into_the_name_box_is_not_kept(engine):
    """A failed sign-in under an unknown name keeps its length only, not the text (which may be a password)."""
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    typed = "Tr0ub4dor&3-horse-battery"
    for name in (typed, typed.lower()):  # one not a valid account name, one that is
        with pytest.raises(AccessError, match=r"^wrong name or password"):
            accounts.authenticate(engine, name, "", now=NOW, settings=Settings())
    assert typed.lower() not in every_text_in_the_store(engine).lower()
    assert [r["details"]["name_length"] for r in audit_rows(engine, "sign_in.failure")] == [len(typed)] * 2


def test_a_new_password_lifts_the_lockout(engine):
    settings = Settings(sign_in_max_failures=2)
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    for _ in range(2):
        with pytest.raises(AccessError):
            accounts.authenticate(engine, "alice", "wrong", now=NOW, settings=settings)
    new = accounts.set_password(engine, "alice", actor="cli:test")
    assert accounts.authenticate(engine, "alice", new, now=NOW, settings=settings).name == "alice"
    with pytest.raises(AccessError, match="wrong name or password"):
        accounts.authenticate(engine, "alice", PASSWORD, now=NOW, settings=settings)
    assert audit_rows(engine, "user.password")[0]["details"] == {"password": "generated"}


def test_disabled_accounts_cannot_sign_in_and_vanish_from_sessions(engine):
    accounts.add_user(engine, "admin", role=ADMIN, actor="cli:test")
    accounts.add_user(engine, "alice", role=OFFICER, password=PASSWORD, actor="cli:test")
    accounts.disable_user(engine, "alice", actor="cli:test")
    with pytest.raises(AccessError, match="disabled"):
        accounts.authenticate(engine, "alice", PASSWORD, now=NOW, settings=Settings())
    assert accounts.get_user(engine, "alice") is None
    accounts.enable_user(engine, "alice", actor="cli:test")
    assert accounts.get_user(engine, "alice").role == OFFICER
    assert [r["action"] for r in audit_rows(engine) if r["target"] == "alice"][-3:] == [
        "user.disable",
        "sign_in.refused",
        "user.enable",
    ]


def test_role_and_beat_changes_are_audited_and_take_effect(areas):
    accounts.add_user(areas, "alice", role=OFFICER, beats=["A"], actor="cli:test")
    accounts.set_role(areas, "alice", SUPERVISOR, actor="cli:test")
    accounts.set_beats(areas, "alice", ["B"], actor="cli:test")
    assert accounts.get_user(areas, "alice") == User("alice", SUPERVISOR, ("B",), False, "alice")
    accounts.set_beats(areas, "alice", [], all_beats=True, actor="cli:test")
    assert accounts.get_user(areas, "alice").all_beats
    details = [(r["action"], r["details"]) for r in audit_rows(areas) if r["action"] in ("user.role", "user.beats")]
    assert details == [
        ("user.role", {"from": OFFICER, "to": SUPERVISOR}),
        ("user.beats", {"from": ["A"], "to": ["B"]}),
        ("user.beats", {"from": ["B"], "to": "all"}),
    ]


def test_the_last_administrator_stays(engine):
    accounts.add_user(engine, "admin", role=ADMIN, actor="cli:test")
    with pytest.raises(InputError, match="last administrator"):
        accounts.disable_user(engine, "admin", actor="cli:test")
    with pytest.raises(InputError, match="last administrator"):
        accounts.set_role(engine, "admin", OFFICER, actor="cli:test")
    accounts.add_user(engine, "admin2", role=ADMIN, actor="cli:test")
    accounts.disable_user(engine, "admin", actor="cli:test")
    assert accounts.has_admin(engine)


def test_only_an_administrator_changes_accounts_from_the_dashboard(engine):
    boss = accounts.add_user(engine, "boss", role=ADMIN, actor="cli:test")[0]
    sgt = accounts.add_user(engine, "sgt", role=SUPERVISOR, actor="cli:test")[0]
    with pytest.raises(
        AccessError, match="Only administrators have access to account management; you are signed in as sgt"
    ):
        accounts.add_user(engine, "mole", role=ADMIN, actor=sgt)
    for change in (
        lambda: accounts.set_role(engine, "sgt", ADMIN, actor=sgt),
        lambda: accounts.set_password(engine, "boss", actor=sgt),
        lambda: accounts.disable_user(engine, "boss", actor=sgt),
        lambda: accounts.set_beats(engine, "sgt", [], all_beats=True, actor=sgt),
    ):
        with pytest.raises(AccessError):
            change()
    accounts.add_user(engine, "ofc", role=OFFICER, actor=boss)
    assert audit_rows(engine, "user.add")[-1]["actor"] == "boss"
    assert set(accounts.list_users(engine)["name"]) == {"boss", "sgt", "ofc"}


def test_the_first_administrator_only_while_there_is_none(engine):
    assert not accounts.has_admin(engine)
    admin = accounts.create_first_admin(engine, "chief", password=PASSWORD)
    assert admin.role == ADMIN and accounts.has_admin(engine)
    with pytest.raises(AccessError, match="already exists"):
        accounts.create_first_admin(engine, "intruder", password=PASSWORD)
    assert audit_rows(engine, "user.add")[0]["actor"] == "setup:first-admin"


def test_session_expiry():
    settings = Settings(session_minutes=480)
    assert not accounts.session_expired(NOW, now=NOW + timedelta(minutes=479), settings=settings)
    assert accounts.session_expired(NOW, now=NOW + timedelta(minutes=480), settings=settings)


def test_single_sign_on_maps_by_email_then_by_roles_claim(areas):
    settings = Settings()
    accounts.add_user(areas, "sgt", role=SUPERVISOR, beats=["A"], email="sgt@pd.example", actor="cli:test")
    # The users table decides for a known e-mail, whatever the claims say.
    assert accounts.user_from_claims(areas, {"email": "SGT@pd.example", "roles": ["admin"]}, settings=settings) == User(
        "sgt", SUPERVISOR, ("A",), False, None
    )
    # Otherwise the roles claim: the first of admin, supervisor, officer it lists; beats from the beats claim.
    officer = accounts.user_from_claims(
        areas, {"email": "o@pd.example", "roles": "officer", "beats": ["B"]}, settings=settings
    )
    assert officer == User("o@pd.example", OFFICER, ("B",), False, "o@pd.example")
    lieutenant = accounts.user_from_claims(
        areas, {"email": "lt@pd.example", "roles": ["officer", "supervisor"]}, settings=settings
    )
    assert lieutenant.role == SUPERVISOR and lieutenant.all_beats
    assert accounts.user_from_claims(areas, {"email": "x@pd.example", "roles": ["viewer"]}, settings=settings) is None
    assert accounts.user_from_claims(areas, {"email": "x@pd.example"}, settings=settings) is None
    assert (
        accounts.user_from_claims(
            areas, {"email": "not an address", "sub": "u-17", "roles": ["officer"]}, settings=settings
        ).name
        == "u-17"
    )
    # A disabled account refuses, rather than falling back to the claims.
    accounts.add_user(areas, "admin", role=ADMIN, actor="cli:test")
    accounts.disable_user(areas, "sgt", actor="cli:test")
    assert (
        accounts.user_from_claims(areas, {"email": "sgt@pd.example", "roles": ["supervisor"]}, settings=settings)
        is None
    )


def test_require_names_what_who_and_why():
    with pytest.raises(AccessError, match=r"^Only supervisors have access to exports; you are not signed in"):
        accounts.require(None, SUPERVISOR, what="exports")
    officer = User("ofc", OFFICER, ("A",))
    with pytest.raises(AccessError, match="you are signed in as ofc \\(officer\\)"):
        accounts.require(officer, SUPERVISOR, ADMIN, what="the audit log")
    assert accounts.require(officer, OFFICER, SUPERVISOR, what="coverage") is officer


def test_one_account_per_officer_id_and_ids_within_the_length_policy(engine):
    accounts.add_user(engine, "jdoe", role=OFFICER, actor="cli:test", officer_id="O7")
    with pytest.raises(InputError, match="'jdoe' already has officer id 'O7'"):
        accounts.add_user(engine, "jdoe2", role=OFFICER, actor="cli:test", officer_id="O7")
    with pytest.raises(InputError, match="at most 128 characters"):
        accounts.add_user(engine, "long", role=OFFICER, actor="cli:test", officer_id="O" * 129)
    accounts.add_user(engine, "long", role=OFFICER, actor="cli:test", officer_id="O" * 128)


def test_a_user_given_a_download_before_a_demotion_has_nothing_at_the_click(engine):
    """still_signed_in is what a download button asks when clicked: the user as drawn, only while nothing changed."""
    settings = Settings(session_minutes=60)
    accounts.add_user(engine, "sgt", role=SUPERVISOR, beats=["A", "B"], password=PASSWORD, actor="cli:test")
    drawn = accounts.get_user(engine, "sgt")

    def at_click(minutes: float = 1) -> accounts.User | None:
        return accounts.still_signed_in(
            engine, drawn, signed_in_at=NOW, now=NOW + timedelta(minutes=minutes), settings=settings
        )

    assert at_click() == drawn
    assert at_click(61) is None  # the session has ended
    assert accounts.still_signed_in(engine, None, signed_in_at=NOW, now=NOW, settings=settings) is None
    accounts.set_beats(engine, "sgt", ["A"], actor="cli:test")
    assert at_click() is None
    accounts.set_beats(engine, "sgt", ["A", "B"], actor="cli:test")
    assert at_click() == drawn
    accounts.set_role(engine, "sgt", OFFICER, actor="cli:test")
    assert at_click() is None
    accounts.set_role(engine, "sgt", SUPERVISOR, actor="cli:test")
    accounts.disable_user(engine, "sgt", actor="cli:test")
    assert at_click() is None
    sso = accounts.User("someone@pd.example", SUPERVISOR, all_beats=True)
    assert accounts.still_signed_in(engine, sso, signed_in_at=NOW, now=NOW, settings=settings) == sso


def test_the_first_administrator_needs_a_typed_password(engine):
    """Empty password fields used to create the account with a generated password nobody was ever shown."""
    with pytest.raises(InputError, match="type a password for the first administrator"):
        accounts.create_first_admin(engine, "chief", password="")
    assert not accounts.has_admin(engine) and accounts.list_users(engine).empty
    assert accounts.create_first_admin(engine, "chief", password=PASSWORD).role == ADMIN
