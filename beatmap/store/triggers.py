"""Database triggers that keep the audit log append-only, as of the newest migration.

A new store gets these when it is created; migrations carry their own frozen copy
of the statements they ran, so history never changes when this file does.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from beatmap.errors import StoreError

#: The databases beatmap supports; elsewhere the audit log's guarantees could not be kept.
SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# UPDATE and DELETE are refused, and so is an INSERT that names an existing audit_id: SQLite's REPLACE and
# INSERT OR REPLACE delete the old row without firing the DELETE trigger (recursive_triggers is off), and
# ON CONFLICT DO UPDATE would rewrite it.
AUDIT_GUARD_DDL: dict[str, list[str]] = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_replace BEFORE INSERT ON audit_log "
        "WHEN NEW.audit_id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE audit_id = NEW.audit_id) "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: that audit_id exists'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION beatmap_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION beatmap_audit_append_only()",
        "CREATE OR REPLACE FUNCTION beatmap_audit_no_replace() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF EXISTS (SELECT 1 FROM audit_log WHERE audit_id = NEW.audit_id) THEN "
        "RAISE EXCEPTION 'the audit log is append-only: that audit_id exists'; END IF; RETURN NEW; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION beatmap_audit_no_replace()",
    ],
}


def check_dialect(name: str) -> None:
    """Refuse a database other than SQLite or PostgreSQL, naming the ones that work."""
    if name not in SUPPORTED_DIALECTS:
        raise StoreError(
            f"beatmap does not support {name} databases: the audit log's append-only triggers exist "
            "only for SQLite and PostgreSQL; use a SQLite file or a postgresql+psycopg:// URL"
        )


def create_audit_guard(conn: Connection) -> None:
    """Create the triggers that refuse UPDATE and DELETE on the audit log."""
    check_dialect(conn.dialect.name)
    for statement in AUDIT_GUARD_DDL[conn.dialect.name]:
        conn.exec_driver_sql(statement)
