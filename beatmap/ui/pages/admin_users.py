"""Users: add accounts; change roles and beats; reset passwords; disable and enable (administrators)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from beatmap import accounts, store
from beatmap import schema as S
from beatmap.accounts import ADMIN, OFFICER, ROLES, SUPERVISOR
from beatmap.errors import BeatmapError
from beatmap.ui import auth, data
from beatmap.ui.safe import md_escape

st.title("Users")
signed_in = auth.require_page("users")
assert signed_in is not None  # the page is for administrators: require_page stopped it for the public
user = signed_in
engine = data.get_engine()
beat_ids = store.read_beats(engine)[S.BEAT_ID].tolist()

T = TypeVar("T")


def attempt(change: Callable[[], T], done: str) -> T | None:
    """Run an account change; say what happened, or why it was refused."""
    try:
        result = change()
    except BeatmapError as exc:
        st.error(md_escape(exc))
        return None
    st.success(md_escape(done))
    return result


def show_once(password: str | None, name: str) -> None:
    if password:
        st.warning(f"The new password of {md_escape(name)} is shown only now: hand it over in person.")
        st.code(password, language=None)


st.caption(
    "Passwords are generated unless you type one, shown once, and stored only as a hash. Every change here "
    "goes to the audit log."
)

with st.expander("Add an account", expanded=False):
    with st.form("add_user", clear_on_submit=True):
        name = st.text_input("Name", help="2 to 64 letters, digits, '.', '_', '-' or '@'.")
        role = st.selectbox("Role", ROLES)
        beats = st.multiselect("Beats", beat_ids, help="The beats this person works or supervises.")
        every = st.checkbox("All beats (supervisors who cover the whole city)")
        officer_id = st.text_input("Officer id in the activity records", help="Officers: defaults to the name.")
        email = st.text_input("E-mail, for single sign-on (optional)")
        password = st.text_input("Password (leave empty to generate one)", type="password", autocomplete="new-password")
        add = st.form_submit_button("Add account", type="primary")
    if add:
        added = attempt(
            lambda: accounts.add_user(
                engine,
                name,
                role=role,
                actor=user,
                beats=beats,
                all_beats=every,
                password=password or None,
                officer_id=officer_id or None,
                email=email or None,
            ),
            f"Added {name.strip().lower()} ({role}).",
        )
        if added:
            show_once(added[1], added[0].name)

users = accounts.list_users(engine)
st.subheader("Change an account")
if users.empty:
    st.info("No accounts yet.")
    st.stop()
target = st.selectbox("Account", users["name"].tolist())
row = users.set_index("name").loc[target]
role_tab, beats_tab, password_tab, access_tab = st.tabs(["Role", "Beats", "Password", "Enable / disable"])
with role_tab:
    new_role = st.selectbox("Role", ROLES, index=ROLES.index(row["role"]), key=f"role-{target}")
    if st.button("Change role", key=f"set-role-{target}"):
        attempt(lambda: accounts.set_role(engine, target, new_role, actor=user), f"{target} is now {new_role}.")
with beats_tab:
    assigned = [] if row["beats"] in ("", "all") else [b.strip() for b in row["beats"].split(",")]
    chosen = st.multiselect("Beats", sorted(set(beat_ids) | set(assigned)), default=assigned, key=f"beats-{target}")
    all_beats = st.checkbox("All beats", value=row["beats"] == "all", key=f"all-{target}")
    if st.button("Save beats", key=f"set-beats-{target}"):
        attempt(
            lambda: accounts.set_beats(engine, target, chosen, all_beats=all_beats, actor=user),
            f"Beats of {target} saved.",
        )
with password_tab:
    st.write("A new password is generated and shown once; any lockout is lifted.")
    if st.button("Reset password", key=f"reset-{target}"):
        show_once(
            attempt(lambda: accounts.set_password(engine, target, actor=user), f"Password of {target} reset."), target
        )
with access_tab:
    if row["disabled"]:
        if st.button("Enable account", key=f"enable-{target}"):
            attempt(lambda: accounts.enable_user(engine, target, actor=user), f"{target} can sign in again.")
    elif st.button("Disable account", key=f"disable-{target}", type="primary"):
        attempt(
            lambda: accounts.disable_user(engine, target, actor=user),
            f"{target} can no longer sign in; open sessions end at their next page load.",
        )

st.subheader("Accounts")
users = accounts.list_users(engine)
st.dataframe(
    users,
    hide_index=True,
    width="stretch",
    column_config={
        "failed_attempts": st.column_config.NumberColumn("Failed sign-ins"),
        "locked_until": st.column_config.DatetimeColumn("Locked until (UTC)"),
        "created_at": st.column_config.DatetimeColumn("Created (UTC)"),
        "last_sign_in": st.column_config.DatetimeColumn("Last sign-in (UTC)"),
    },
)
st.caption(
    f"{(users['role'] == OFFICER).sum()} officers, {(users['role'] == SUPERVISOR).sum()} supervisors, "
    f"{(users['role'] == ADMIN).sum()} administrators; {int(users['disabled'].sum())} disabled."
)
