"""Showing text that came from users (file names, ids, notes) without it turning into markup."""

from __future__ import annotations

import re

# Markdown, Streamlit's colour/icon/emoji directives (":red[...]", ":material/x:"), LaTeX ("$"), entity
# references ("&amp;" would show as "&"), and what makes a bare URL or e-mail address a link: the ":" of
# "http://", the "." of "www.evil.example" and the "@" of "a@b.example" (GitHub-style autolinks).  A list
# marker or a heading underline at a line's start ("-", "=", "1.") is escaped too.
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$:&.@=-])")


def md_escape(text: object) -> str:
    """``text`` as Streamlit Markdown that shows it literally (no links, images, styling or HTML)."""
    return _SPECIAL.sub(r"\\\1", str(text))
