"""The audit log: append-only in the store and in the code, filtered reads, CSV export, and the command line."""

from __future__ import annotations

import ast
import io
import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from beatmap import accounts, audit, store
from beatmap.cli import main
from beatmap.export import csv_text
from tests.conftest import ROOT, metric_frame, square, store_db


def entries(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(store.audit_log).order_by(store.audit_log.c.audit_id)).mappings().all()
    return [dict(r) | {"details": json.loads(r["details"])} for r in rows]


def test_the_store_refuses_to_change_or_remove_an_entry(engine):
    audit.record(engine, actor="cli:test", action="export", target="x.csv")
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.update(store.audit_log).values(target="y.csv"))
    assert [(e["actor"], e["target"]) for e in entries(engine)] == [("cli:test", "x.csv")]


#: Ways to write over entry 1, per database (REPLACE and INSERT OR REPLACE are SQLite's; PostgreSQL has neither).
_OVERWRITES = {
    "sqlite": [
        "REPLACE INTO audit_log (audit_id, at, actor, action, target, details) "
        "VALUES (1, '2026-01-01 00:00:00', 'mallory', 'export', 'x', '{}')",
        "INSERT OR REPLACE INTO audit_log (audit_id, at, actor, action, target, details) "
        "VALUES (1, '2026-01-01 00:00:00', 'mallory', 'export', 'x', '{}')",
        "INSERT INTO audit_log (audit_id, at, actor, action, target, details) "
        "VALUES (1, '2026-01-01 00:00:00', 'mallory', 'export', 'x', '{}') "
        "ON CONFLICT (audit_id) DO UPDATE SET actor = excluded.actor",
    ],
    "postgresql": [
        "INSERT INTO audit_log (audit_id, at, actor, action, target, details) "
        "VALUES (1, now(), 'mallory', 'export', 'x', '{}') ON CONFLICT (audit_id) DO UPDATE SET actor = excluded.actor",
        "INSERT INTO audit_log (audit_id, at, actor, action, target, details) "
        "VALUES (1, now(), 'mallory', 'export', 'x', '{}') ON CONFLICT (audit_id) DO NOTHING",
    ],
}


def test_an_insert_over_an_existing_entry_is_refused(engine):
    """REPLACE deleted the old row without firing the DELETE trigger; a BEFORE INSERT trigger refuses it."""
    audit.record(engine, actor="cli:test", action="export", target="x.csv")
    audit.record(engine, actor="cli:test", action="export", target="y.csv")
    for statement in _OVERWRITES[engine.dialect.name]:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert [(e["actor"], e["target"]) for e in entries(engine)] == [("cli:test", "x.csv"), ("cli:test", "y.csv")]
    assert audit.verify_audit_chain(engine).first_bad is None


#: What someone holding the database file runs to lift the guard before rewriting the log.
_DROP_GUARD = {
    "sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
    "postgresql": ["DROP TRIGGER audit_log_append_only ON audit_log"],
}


def test_a_rewritten_entry_breaks_the_hash_chain_and_verify_names_it(engine, tmp_path, capsys, monkeypatch):
    for name in ("a.csv", "b.csv", "c.csv", "d.csv"):
        audit.record(engine, actor="cli:test", action="export", target=name, details={"rows": 1})
    check = audit.verify_audit_chain(engine)
    assert (check.entries, check.first_bad) == (4, None) and len(check.last_hash) == 64
    monkeypatch.setenv("BEATMAP_DB", store_db(tmp_path / "test.db"))
    assert main(["audit", "verify"]) == 0 and "all 4 entries match" in capsys.readouterr().out
    ids = [e["audit_id"] for e in entries(engine)]
    with engine.begin() as conn:
        for statement in _DROP_GUARD[engine.dialect.name]:
            conn.exec_driver_sql(statement)
        conn.execute(sa.update(store.audit_log).where(store.audit_log.c.audit_id == ids[1]).values(actor="nobody"))
    check = audit.verify_audit_chain(engine)
    assert check.first_bad == ids[1] and "changed" in check.reason
    assert main(["audit", "verify"]) == 1 and f"entry {ids[1]} does not match" in capsys.readouterr().out
    with engine.begin() as conn:  # put it back...
        conn.execute(sa.update(store.audit_log).where(store.audit_log.c.audit_id == ids[1]).values(actor="cli:test"))
    assert audit.verify_audit_chain(engine).first_bad is None
    with engine.begin() as conn:  # ...and remove the third entry instead
        conn.execute(sa.delete(store.audit_log).where(store.audit_log.c.audit_id == ids[2]))
    assert audit.verify_audit_chain(engine).first_bad == ids[3]


def _writes_to_audit_log(node: ast.AST) -> bool:
    """An update()/delete() call on the audit table, or SQL text that changes it."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in {
        "update",
        "delete",
    }:
        return any("audit_log" in ast.unparse(arg) for arg in node.args)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = " ".join(node.value.upper().split())
        return any(f"{verb} AUDIT_LOG" in text for verb in ("UPDATE", "DELETE FROM", "TRUNCATE"))
    return False


def test_no_code_path_changes_or_removes_an_entry():
    """Neither the library nor the app has an update, delete or edit path for the audit log."""
    found = {
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in [*(ROOT / "beatmap").rglob("*.py"), ROOT / "app.py"]
        for node in ast.walk(ast.parse(path.read_text()))
        if _writes_to_audit_log(node)
    }
    # The only mentions are the store's triggers that refuse such statements.
    guard_files = [ROOT / "beatmap/store/triggers.py", *(ROOT / "beatmap/store/migrations/versions").glob("*.py")]
    guard = {
        f"{path.relative_to(ROOT)}:{n.lineno}"
        for path in guard_files
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and "append-only" in n.value
    }
    assert found <= guard
    names = [
        name
        for name in dir(audit) + dir(store)
        if "audit" in name.lower() and any(w in name.lower() for w in ("delete", "update", "edit", "remove"))
    ]
    assert names == []
    page = (ROOT / "beatmap/ui/pages/admin_audit.py").read_text()
    assert "data_editor" not in page and "record_audit" not in page


def test_read_audit_filters_by_day_actor_and_action(engine):
    with store.transaction(engine) as conn:
        for day, actor, action in [
            (1, "alice", "sign_in"),
            (2, "alice", "sign_in.failure"),
            (2, "bob", "export"),
            (3, "cli:root", "user.add"),
        ]:
            store.record_audit(conn, actor=actor, action=action, at=datetime(2026, 3, day, 18, tzinfo=UTC))
    tz = "America/Chicago"
    assert list(audit.read_audit(engine, timezone=tz)["actor"]) == ["cli:root", "bob", "alice", "alice"]
    assert list(audit.read_audit(engine, action="sign_in", timezone=tz)["action"]) == ["sign_in.failure", "sign_in"]
    assert list(audit.read_audit(engine, actor="bob", timezone=tz)["action"]) == ["export"]
    day2 = audit.read_audit(engine, start=date(2026, 3, 2), end=date(2026, 3, 2), timezone=tz)
    assert len(day2) == 2 and str(day2["at"].dt.tz) == tz
    assert len(audit.read_audit(engine, limit=1)) == 1


def test_csv_exports_neutralise_formulas():
    table = pd.DataFrame(
        {"block_id": ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "ok", "\tx"], "visits": [1, 2, 3, 4, 5, 6]}
    )
    lines = csv_text(table).splitlines()
    assert lines[1].startswith("\"'=HYPERLINK") and lines[2] == "'+1,2" and lines[3] == "'-2,3"
    assert lines[4] == "'@SUM(A1),4" and lines[5] == "ok,5" and lines[6].startswith("'\tx")
    log = pd.DataFrame(
        {
            "audit_id": [1],
            "at": [pd.Timestamp("2026-03-01", tz="UTC")],
            "actor": ["=cmd|' /C calc'!A0"],
            "action": ["import.activity"],
            "target": ["=1+1.csv"],
            "details": ["{}"],
        }
    )
    row = audit.audit_csv(log).splitlines()[1]
    assert "'=cmd" in row and "'=1+1.csv" in row and ",=" not in row


def run_cli(args: list[str], capsys, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_users_commands(tmp_path, capsys, monkeypatch, settings):
    db = store_db(tmp_path / "cli.db")
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    code, out, _ = run_cli(["--db", db, "users", "add", "Chief", "--role", "admin"], capsys)
    assert code == 0 and "added admin chief" in out and "password: " in out
    generated = out.split("password: ")[1].split()[0]
    assert (
        accounts.authenticate(store.open_store(db), "chief", generated, now=datetime.now(UTC), settings=settings).role
        == "admin"
    )
    code, out, _ = run_cli(
        ["--db", db, "users", "add", "ofc", "--role", "officer", "--password-stdin"],
        capsys,
        stdin="a long typed passphrase\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0 and "password:" not in out
    code, _, err = run_cli(
        ["--db", db, "users", "add", "weak", "--role", "officer", "--password-stdin"],
        capsys,
        stdin="short\n",
        monkeypatch=monkeypatch,
    )
    assert code == 2 and "too short" in err
    code, out, _ = run_cli(["--db", db, "users", "passwd", "ofc"], capsys)
    assert code == 0 and "password: " in out
    assert run_cli(["--db", db, "users", "disable", "ofc"], capsys)[1].strip() == "ofc is disabled"
    code, _, err = run_cli(["--db", db, "users", "disable", "chief"], capsys)
    assert code == 2 and "last administrator" in err
    code, out, _ = run_cli(["--db", db, "users", "list"], capsys)
    assert "chief" in out and "ofc" in out and "argon2" not in out and generated not in out
    actions = [
        (e["actor"], e["action"], e["target"]) for e in entries(store.open_store(db)) if e["action"].startswith("user.")
    ]
    assert actions == [
        ("cli:ops", "user.add", "chief"),
        ("cli:ops", "user.add", "ofc"),
        ("cli:ops", "user.password", "ofc"),
        ("cli:ops", "user.disable", "ofc"),
    ]


def test_audit_command_writes_a_filtered_neutralised_csv(tmp_path, capsys, monkeypatch, settings):
    db = store_db(tmp_path / "cli.db")
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    monkeypatch.chdir(tmp_path)
    beats = metric_frame({"beat_id": ["A"], "geometry": [square(0, 0, 400)]}, "EPSG:4326")
    beats.to_file(tmp_path / "beats.geojson")
    (tmp_path / "=1+2.csv").write_text("occurred_at,lat,lon,kind\n2026-03-02T10:00,41.87596,-87.63631,foot_patrol\n")
    assert main(["--db", db, "areas", "--beats", str(tmp_path / "beats.geojson"), "--grid-m", "200"]) == 0
    assert main(["--db", db, "import", "=1+2.csv"]) == 0
    assert main(["--db", db, "coverage", "--out", str(tmp_path / "cov.csv")]) == 0
    capsys.readouterr()
    code, out, _ = run_cli(["--db", db, "audit", "--action", "import", "--out", str(tmp_path / "log.csv")], capsys)
    assert code == 0 and "wrote 2 audit entries" in out
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log["action"]) == ["import.activity", "import.areas"] and set(log["actor"]) == {"cli:ops"}
    assert log.loc[0, "target"] == "'=1+2.csv"
    assert json.loads(log.loc[0, "details"])["imported"] == 1
    recorded = [(e["actor"], e["action"]) for e in entries(store.open_store(db))]
    assert recorded[-2:] == [("cli:ops", "export"), ("cli:ops", "audit.export")]
    code, _, err = run_cli(["--db", db, "audit", "--out", str(tmp_path / "log.json")], capsys)
    assert code == 2 and "CSV" in err


def test_the_action_filter_compares_the_same_on_both_databases(engine):
    """A prefix match by text: SQLite's LIKE would ignore case where PostgreSQL's does not."""
    for action in ("import.activity", "Import.activity", "importer"):
        audit.record(engine, actor="cli:test", action=action)
    assert audit.read_audit(engine, action="import")["action"].tolist() == ["import.activity"]
