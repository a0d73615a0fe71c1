"""Sessions that outlive a page reload: tokens kept hashed, expiring, ended by sign-out, a new password or
disabling the account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from beatmap import accounts, sessions, store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def test_a_token_opens_its_session_until_it_expires(engine):
    accounts.add_user(engine, "ofc", role="officer", password=PASSWORD, actor="test")
    token = sessions.start_session(engine, "ofc", minutes=60, now=NOW)
    assert len(token) >= 40
    assert sessions.session_user(engine, token, now=NOW + timedelta(minutes=59)) == ("ofc", NOW)
    assert sessions.session_user(engine, token + "x", now=NOW) is None
    assert sessions.session_user(engine, None, now=NOW) is None
    assert sessions.session_user(engine, token, now=NOW + timedelta(minutes=60)) is None  # expired: and ended
    with engine.connect() as conn:
        assert conn.execute(select(store.sessions_table)).all() == []


def test_only_the_hash_is_stored(engine):
    accounts.add_user(engine, "ofc", role="officer", password=PASSWORD, actor="test")
    token = sessions.start_session(engine, "ofc", minutes=60, now=NOW)
    with engine.connect() as conn:
        rows = conn.execute(select(store.sessions_table)).mappings().all()
    assert len(rows) == 1 and rows[0]["token_hash"] != token and len(rows[0]["token_hash"]) == 64
    assert token not in str(dict(rows[0]))


def test_sign_out_a_new_password_and_disabling_end_sessions(engine):
    accounts.add_user(engine, "ofc", role="officer", password=PASSWORD, actor="test")
    accounts.add_user(engine, "boss", role="admin", password=PASSWORD, actor="test")
    first, second = (sessions.start_session(engine, "ofc", minutes=60, now=NOW) for _ in range(2))
    other = sessions.start_session(engine, "boss", minutes=60, now=NOW)
    sessions.end_session(engine, first)  # signing out ends this session only
    assert sessions.session_user(engine, first, now=NOW) is None
    assert sessions.session_user(engine, second, now=NOW) == ("ofc", NOW)
    accounts.set_password(engine, "ofc", actor="boss")
    assert sessions.session_user(engine, second, now=NOW) is None
    third = sessions.start_session(engine, "ofc", minutes=60, now=NOW)
    accounts.disable_user(engine, "ofc", actor="boss")
    assert sessions.session_user(engine, third, now=NOW) is None
    assert sessions.session_user(engine, other, now=NOW) == ("boss", NOW)  # another account's session stays


def test_a_new_session_clears_expired_ones(engine):
    accounts.add_user(engine, "ofc", role="officer", password=PASSWORD, actor="test")
    sessions.start_session(engine, "ofc", minutes=5, now=NOW)
    sessions.start_session(engine, "ofc", minutes=5, now=NOW + timedelta(hours=1))
    with engine.connect() as conn:
        assert len(conn.execute(select(store.sessions_table)).all()) == 1
