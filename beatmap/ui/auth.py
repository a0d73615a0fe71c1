"""Who is signed in to the dashboard: local accounts, or single sign-on (OpenID Connect).

``app.py`` calls :func:`resolve_user` once per run, before it builds the page
list, and :func:`sidebar` to draw the sign-in form or the signed-in user with
a sign-out button.  Pages call :func:`current_user` and pass the user to the
:mod:`beatmap.access` functions, which enforce the rules on the data.

A local session is the account name and the sign-in time in the session
state; the account is read again on every run, so disabling it, or changing
its role or beats, takes effect at the next page load.  A session ends
``session_minutes`` (settings) after signing in.  It outlives a page reload
(phones reload background tabs): the browser keeps a random token in a cookie
(:mod:`beatmap.sessions`, SameSite=Strict, Secure over HTTPS), which a new
page load trades for the session; signing out ends it.

Single sign-on is Streamlit's own OpenID Connect (``st.login``, ``st.user``),
used when ``.streamlit/secrets.toml`` has an ``[auth]`` section (see
``.streamlit/secrets.toml.example``); :func:`beatmap.accounts.user_from_claims`
maps the identity to a role.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import streamlit as st
import streamlit.components.v1 as components
from sqlalchemy import Engine
from streamlit.delta_generator import DeltaGenerator

from beatmap import access, accounts, sessions
from beatmap.accounts import User
from beatmap.errors import BeatmapError
from beatmap.settings import Settings
from beatmap.ui.safe import md_escape

#: Session-state keys of a local session: the account name and the (aware) sign-in time.
SESSION_NAME = "auth_name"
SESSION_SIGNED_IN_AT = "auth_signed_in_at"
#: Session-state key of the signed-in User of this run (set by resolve_user; a page run alone in a test sets it).
USER = "auth_user"
_NOTICE = "auth_notice"
_SSO_SINCE = "auth_sso_since"
_LANDING = "auth_landing"
#: Session-state key of a cookie to write (a new session's token) or clear (""), at the next sidebar.
_COOKIE_TO_WRITE = "auth_cookie"
#: First-run setup codes per store URL, for the life of the server process (see setup_code).
_SETUP_CODES: dict[str, str] = {}
_SETUP_LOCK = threading.Lock()


def sso_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section (single sign-on is set up)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all
        return False


def take_landing() -> bool:
    """True once after signing in or out: the app then opens the user's first page."""
    return bool(st.session_state.pop(_LANDING, False))


def current_user() -> User | None:
    """The user signed in for this run (None: the public); set by :func:`resolve_user`."""
    return st.session_state.get(USER)


def resolve_user(engine: Engine, settings: Settings, *, now: datetime | None = None) -> User | None:
    """Work out who is signed in for this run, ending expired or disabled sessions."""
    now = now or datetime.now(UTC)
    if sso_configured() and st.user.get("is_logged_in"):
        user = _sso_user(engine, settings, now)
    else:
        user = _local_user(engine, settings, now)
    st.session_state[USER] = user
    return user


def _cookie_token() -> str | None:
    """The session token the browser sent with this page load, if any."""
    try:
        value = st.context.cookies.get(sessions.COOKIE)
    except (AttributeError, RuntimeError):  # no browser request behind this run
        return None
    return value if isinstance(value, str) and value else None  # a test run has no real cookies


def _local_user(engine: Engine, settings: Settings, now: datetime) -> User | None:
    name, since = st.session_state.get(SESSION_NAME), st.session_state.get(SESSION_SIGNED_IN_AT)
    if not name and _COOKIE_TO_WRITE not in st.session_state:  # a new page load: the cookie may carry a session
        found = sessions.session_user(engine, _cookie_token(), now=now)
        if found is not None:
            name, since = found
            st.session_state[SESSION_NAME], st.session_state[SESSION_SIGNED_IN_AT] = found
    if not name:
        return None
    user = accounts.get_user(engine, name)
    if user is None:
        _end_session("Your account was disabled; ask an administrator.", engine=engine)
        return None
    if since is None or accounts.session_expired(since, now=now, settings=settings):
        accounts.record_sign_out(engine, user, reason="session expired", now=now)
        _end_session(f"Your session ended after {settings.session_minutes} minutes; sign in again.", engine=engine)
        return None
    if accounts.password_changed_since(engine, user.name, since):  # e.g. reset by an administrator
        accounts.record_sign_out(engine, user, reason="password changed", now=now)
        _end_session("Your password was changed; sign in again with the new one.", engine=engine)
        return None
    return user


def _sso_user(engine: Engine, settings: Settings, now: datetime) -> User | None:
    user = accounts.user_from_claims(engine, st.user.to_dict(), settings=settings)
    if user is None:
        st.session_state[_NOTICE] = (
            f"{st.user.get('email') or 'This account'} has no role in beatmap; "
            "ask an administrator to add your e-mail to an account."
        )
        return None
    since = st.session_state.get(_SSO_SINCE)
    if since is None:
        accounts.record_sign_in(engine, user, method="single sign-on", now=now)
        st.session_state[_SSO_SINCE] = now
    elif accounts.session_expired(since, now=now, settings=settings):
        accounts.record_sign_out(engine, user, reason="session expired", now=now)
        st.session_state.pop(_SSO_SINCE, None)
        st.logout()
    return user


def _start_session(engine: Engine, settings: Settings, user: User, now: datetime) -> None:
    st.session_state[SESSION_NAME] = user.name
    st.session_state[SESSION_SIGNED_IN_AT] = now
    st.session_state[_COOKIE_TO_WRITE] = sessions.start_session(
        engine, user.name, minutes=settings.session_minutes, now=now
    )
    st.session_state[_LANDING] = True


def _end_session(notice: str | None = None, *, engine: Engine | None = None) -> None:
    for key in (SESSION_NAME, SESSION_SIGNED_IN_AT, USER, _SSO_SINCE):
        st.session_state.pop(key, None)
    if engine is not None:
        sessions.end_session(engine, _cookie_token())
        sessions.end_session(engine, st.session_state.get(_COOKIE_TO_WRITE))
    st.session_state[_COOKIE_TO_WRITE] = ""  # the browser forgets the token
    if notice:
        st.session_state[_NOTICE] = notice
    st.session_state[_LANDING] = True


#: Below this width (Streamlit's own breakpoint) the side menu covers the page instead of sitting beside it.
NARROW_PX = 768
#: After signing in on a narrow screen, close the side menu (opened to sign in) as its own button does, so
#: the page shows; the menu remembers it (Streamlit keeps the state in the browser's local storage).
_CLOSE_MENU_ON_PHONE = (
    f"if (page.innerWidth < {NARROW_PX}) {{ var close = page.document.querySelector("
    "'[data-testid=\"stSidebarCollapseButton\"] button'); if (close) close.click(); }"
)


def _write_cookie() -> None:
    """Hand the browser the session token to keep (or tell it to forget it), once.

    A zero-height frame of this app's own origin sets the cookie on the page (SameSite=Strict, Secure
    over HTTPS, for the whole app); the token travels in the app's own connection, never in a URL.
    With a new session (just signed in) on a narrow screen it also closes the side menu.
    """
    token = st.session_state.pop(_COOKIE_TO_WRITE, None)
    if token is None:
        return
    value = json.dumps(token)
    age = "" if token else "; max-age=0"
    components.html(
        "<script>(function () { var page = window.parent; var secure = page.location.protocol === 'https:' ? "
        f"'; Secure' : ''; page.document.cookie = '{sessions.COOKIE}=' + encodeURIComponent({value}) + "
        f"'; path=/; SameSite=Strict{age}' + secure; {_CLOSE_MENU_ON_PHONE if token else ''} }})();</script>",
        height=0,
    )


def sidebar(engine: Engine, settings: Settings, user: User | None) -> None:
    """The sidebar's account part: who is signed in and a sign-out button, or the ways to sign in."""
    side = st.sidebar.container(border=True)
    with st.sidebar:
        _write_cookie()
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        side.warning(md_escape(notice))
    if user is not None:
        side.text(f"Signed in as {user.name} ({user.role})")
        if side.button("Sign out", key="auth_sign_out", icon=":material/logout:"):
            accounts.record_sign_out(engine, user)
            _end_session(engine=engine)
            if sso_configured() and st.user.get("is_logged_in"):
                st.logout()
            st.rerun()
        return
    if not accounts.has_admin(engine):
        _first_admin_form(engine, settings, side)
        return
    _sign_in_form(engine, settings, side)
    if sso_configured():
        side.button("Sign in with single sign-on", key="auth_sso", on_click=st.login, icon=":material/key:")


def _sign_in_form(engine: Engine, settings: Settings, side: DeltaGenerator) -> None:
    with side.form("auth_sign_in", clear_on_submit=True, border=False):
        st.markdown("**Sign in**")
        name = st.text_input("Name", key="auth_form_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="auth_form_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    now = datetime.now(UTC)
    try:
        user = accounts.authenticate(engine, name, password, now=now, settings=settings, client=client_of(settings))
    except BeatmapError as exc:
        side.error(md_escape(exc))
        return
    _start_session(engine, settings, user, now)
    st.rerun()


def client_of(settings: Settings) -> str:
    """Who is signing in, for the failed sign-in count: the address the server sees, or the first address in
    ``settings.trusted_proxy_header`` behind the department's reverse proxy."""
    if settings.trusted_proxy_header:
        forwarded = st.context.headers.get(settings.trusted_proxy_header)
        first = forwarded.split(",")[0].strip() if isinstance(forwarded, str) else ""
        if first:
            return first[:128]
    address = st.context.ip_address
    return address[:128] if isinstance(address, str) and address else "unknown"


def setup_code(engine: Engine) -> str:
    """The one-time code the first-administrator form asks for, printed on the server's console.

    Whoever reaches a new dashboard first could otherwise make themselves its
    administrator; the code proves access to the server.  One code per store
    and server process.
    """
    url = engine.url.render_as_string(hide_password=True)
    with _SETUP_LOCK:
        if url not in _SETUP_CODES:
            _SETUP_CODES[url] = accounts.generate_password(12)
            print(
                f"beatmap: no administrator exists yet for {url}. To create the first one in the dashboard, "
                f"give this setup code: {_SETUP_CODES[url]}",
                file=sys.stderr,
                flush=True,
            )
        return _SETUP_CODES[url]


def _first_admin_form(engine: Engine, settings: Settings, side: DeltaGenerator) -> None:
    code = setup_code(engine)
    side.info(
        "No administrator exists yet. Create the first one: they add everyone else. The setup code is "
        "printed on the console of the server running the dashboard; ask whoever runs the server for it."
    )
    with side.form("auth_first_admin", clear_on_submit=True, border=False):
        st.markdown("**Create the first administrator**")
        given = st.text_input("Setup code (from the server's console)", type="password", key="auth_setup_code")
        name = st.text_input("Name", key="auth_admin_name", autocomplete="username")
        password = st.text_input(
            "Password (at least 12 characters)", type="password", key="auth_admin_password", autocomplete="new-password"
        )
        again = st.text_input("Password again", type="password", key="auth_admin_again", autocomplete="new-password")
        submitted = st.form_submit_button("Create and sign in", type="primary")
    if not submitted:
        return
    if not secrets.compare_digest(given.strip().encode(), code.encode()):
        side.error("That is not the setup code; copy it from the console of the server running the dashboard.")
        return
    if password != again:
        side.error("The two passwords differ; type the same password twice.")
        return
    now = datetime.now(UTC)
    try:
        user = accounts.create_first_admin(engine, name, password=password, now=now)
    except BeatmapError as exc:
        side.error(md_escape(exc))
        return
    accounts.record_sign_in(engine, user, method="first-run setup", now=now)
    _start_session(engine, settings, user, now)
    st.rerun()


def at_click(engine: Engine, settings: Settings) -> Callable[[], User | None]:
    """A function giving the signed-in user as they are when it is called, for a download made at click time.

    A download button drawn for a supervisor who is then demoted, disabled or
    signed out must not still work: its file is made when clicked, and this
    answers None then (see :func:`beatmap.accounts.still_signed_in`).
    """
    user = current_user()
    since = st.session_state.get(SESSION_SIGNED_IN_AT) or st.session_state.get(_SSO_SINCE)

    def now_user() -> User | None:
        return accounts.still_signed_in(engine, user, signed_in_at=since, now=datetime.now(UTC), settings=settings)

    return now_user


def require_page(page: str) -> User | None:
    """The current user, when they may open ``page`` (a key of :data:`beatmap.access.PAGES`); else stop the page.

    The navigation already leaves such pages out; this keeps a page safe if it is ever run another way.
    """
    user = current_user()
    if not access.may_open(user, page):
        st.error("This page is not available to you. Sign in with an account that may open it.")
        st.stop()
    return user
