"""The ``beatmap users`` and ``beatmap audit`` commands (accounts and the audit log on the command line).

Command-line acts are audited as ``cli:<os user>``: whoever can run the
command on the server can open the store anyway, so no sign-in is asked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from beatmap.errors import InputError
from beatmap.schema import ACCOUNT_ROLES
from beatmap.settings import Settings

if TYPE_CHECKING:  # the modules themselves are imported by the commands that use them (a quick --help)
    from sqlalchemy import Engine

    from beatmap.accounts import User

COMMANDS = ("users", "audit")


def add_commands(sub: argparse._SubParsersAction, *, date_type: Callable[[str], date]) -> None:
    """Add ``users`` and ``audit`` to the main parser's subcommands."""
    users = sub.add_parser("users", help="dashboard accounts: add, passwd, disable, enable, role, beats, list")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add an account; prints a generated password once")
    add.add_argument("name", help="2 to 64 letters, digits, '.', '_', '-' or '@'")
    add.add_argument("--role", required=True, choices=ACCOUNT_ROLES)
    _beat_options(add)
    add.add_argument("--officer-id", help="the officer_id of the person's activity records (officers: the name)")
    add.add_argument("--email", help="the e-mail single sign-on reports for this person")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (at least 12 characters) instead of generating one",
    )

    passwd = actions.add_parser(
        "passwd", help="set a new password (generated unless --password-stdin); lifts a lockout"
    )
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    for name, what in (("disable", "stop an account from signing in"), ("enable", "let a disabled account sign in")):
        actions.add_parser(name, help=what).add_argument("name")

    role = actions.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=ACCOUNT_ROLES)

    beats = actions.add_parser("beats", help="replace an account's beats")
    beats.add_argument("name")
    _beat_options(beats)

    actions.add_parser("list", help="every account, without passwords")

    log = sub.add_parser("audit", help="write the audit log (newest first) as CSV, or verify its hash chain")
    log.add_argument(
        "verify",
        nargs="?",
        choices=["verify"],
        help="recompute every entry's chained hash; name the first that does not match (exit 1)",
    )
    log.add_argument("--from", dest="start", type=date_type, help="first day (department time)")
    log.add_argument("--to", dest="end", type=date_type, help="last day (department time)")
    log.add_argument("--actor", help="only this actor, e.g. a user name or cli:alice")
    log.add_argument("--action", help="only this action and its sub-actions, e.g. sign_in or user.role")
    log.add_argument("--out", type=Path, help="CSV file to write")


def _verify(engine: Engine) -> int:
    from beatmap.audit import verify_audit_chain

    check = verify_audit_chain(engine)
    if check.first_bad is not None:
        print(
            f"audit log: entry {check.first_bad} does not match: {check.reason}. The entries before it are intact; "
            "compare with a backup or an exported copy to see what changed."
        )
        return 1
    print(
        f"audit log: all {check.entries:,} entries match their hash chain; the newest hash is "
        f"{check.last_hash or '(none)'} (write it down elsewhere: a later check then shows nothing before it "
        "was rewritten)"
    )
    return 0


def _beat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beat", action="append", default=[], metavar="ID", help="a beat of theirs (repeat for more)")
    parser.add_argument("--all-beats", action="store_true", help="every beat, present and future")


def run(args: argparse.Namespace, *, db: str | None, settings: Settings) -> int:
    from beatmap import accounts, store
    from beatmap.audit import cli_actor

    """Run ``users`` or ``audit``; print a short summary and return the exit status."""
    actor = cli_actor()
    if args.command == "audit":
        engine = store.open_store(db, create=False)
        return _audit(engine, args, actor=actor, settings=settings)
    engine = store.open_store(db)
    action = args.users_command
    if action == "add":
        user, generated = accounts.add_user(
            engine,
            args.name,
            role=args.role,
            actor=actor,
            beats=args.beat,
            all_beats=args.all_beats,
            password=_stdin_password() if args.password_stdin else None,
            officer_id=args.officer_id,
            email=args.email,
        )
        print(
            f"added {user.role} {user.name} ({_beats_text(user)}"
            + (f"; officer id {user.officer_id}" if user.officer_id else "")
            + ")"
        )
        _print_once(generated, user.name)
    elif action == "passwd":
        generated = accounts.set_password(
            engine, args.name, _stdin_password() if args.password_stdin else None, actor=actor
        )
        print(f"new password set for {args.name.lower()}; any lockout is lifted")
        _print_once(generated, args.name.lower())
    elif action in ("disable", "enable"):
        (accounts.disable_user if action == "disable" else accounts.enable_user)(engine, args.name, actor=actor)
        print(f"{args.name.lower()} is {action}d")
    elif action == "role":
        accounts.set_role(engine, args.name, args.role, actor=actor)
        print(f"{args.name.lower()} is now {args.role}")
    elif action == "beats":
        accounts.set_beats(engine, args.name, args.beat, all_beats=args.all_beats, actor=actor)
        print(f"{args.name.lower()}: {_beats_text(accounts.get_user(engine, args.name))}")
    elif action == "list":
        table = accounts.list_users(engine).drop(columns="created_at")
        table = table.astype(object).where(table.notna(), "")
        print(
            table.to_string(index=False)
            if len(table)
            else "no accounts yet; add the first administrator with `beatmap users add NAME --role admin`"
        )
    return 0


def _beats_text(user: User | None) -> str:
    if user is None:
        return "disabled"
    if user.all_beats:
        return "all beats"
    return f"beats {', '.join(user.beats)}" if user.beats else "no beats"


def _stdin_password() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise InputError("--password-stdin: no password on standard input; pipe it in, e.g. from a password manager.")
    return line


def _print_once(generated: str | None, name: str) -> None:
    if generated:
        print(
            f"  password: {generated}\n  (shown only now; hand it to {name} in person. "
            f"Set a new one with `beatmap users passwd {name}`.)"
        )


def _audit(engine: Engine, args: argparse.Namespace, *, actor: str, settings: Settings) -> int:
    from beatmap.audit import audit_csv, read_audit, record

    if args.verify:
        return _verify(engine)
    if args.out is None:
        raise InputError("beatmap audit: give --out FILE.csv to write the entries, or `beatmap audit verify`.")
    path = args.out if args.out.suffix else args.out.with_suffix(".csv")
    if path.suffix.lower() != ".csv":
        raise InputError(f"--out {args.out}: the audit log is written as CSV; give a file ending in .csv.")
    entries = read_audit(
        engine, start=args.start, end=args.end, actor=args.actor, action=args.action, timezone=settings.timezone
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(audit_csv(entries), encoding="utf-8")
    record(
        engine,
        actor=actor,
        action="audit.export",
        target=str(path),
        details={"rows": len(entries), "from": args.start, "to": args.end, "actor": args.actor, "action": args.action},
    )
    print(f"wrote {len(entries):,} audit entries to {path} (times in {settings.timezone})")
    return 0
