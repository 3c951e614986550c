"""Optional login: Streamlit's built-in OpenID Connect sign-in (``st.login`` / ``st.user``).

Switched on by ``dashboard.login: true`` in gitops-dora.yaml or ``GITOPS_DORA_REQUIRE_LOGIN=1``;
the identity provider is configured in the ``[auth]`` section of Streamlit's ``secrets.toml``.
When login is required and cannot work (no ``[auth]`` section, Authlib missing), no page renders:
the dashboard fails closed. The functions above :func:`gate` import no Streamlit, so the CLI uses
them to decide whether to warn about an open bind address.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOGIN_ENV = "GITOPS_DORA_REQUIRE_LOGIN"
SECRETS_FILES_ENV = "STREAMLIT_SECRETS_FILES"  # Streamlit's own variable for `secrets.files`
APP_DIR = Path(__file__).resolve().parent
_TRUE = {"1", "true", "yes", "on"}


def login_from_env() -> bool:
    return os.environ.get(LOGIN_ENV, "").strip().lower() in _TRUE


def login_required(config_login: bool) -> bool:
    """Either switch turns login on; neither can turn the other off."""
    return login_from_env() or bool(config_login)


def secrets_files(cwd: Path | None = None) -> list[Path]:
    """Where Streamlit reads ``secrets.toml`` for ``gitops-dora dashboard``: ``$STREAMLIT_SECRETS_FILES``
    (whitespace-separated) when set, else ``~/.streamlit/``, the working directory's ``.streamlit/``
    and the app folder's ``.streamlit/``."""
    listed = os.environ.get(SECRETS_FILES_ENV, "").split()
    if listed:
        return [Path(p).expanduser() for p in listed]
    here = cwd or Path.cwd()
    return [Path.home() / ".streamlit" / "secrets.toml", here / ".streamlit" / "secrets.toml",
            APP_DIR / ".streamlit" / "secrets.toml"]


def auth_section_in(paths: list[Path]) -> Path | None:
    """The first secrets file (or Kubernetes-style secrets folder) that has an ``auth`` section."""
    for path in paths:
        if path.is_dir():
            if (path / "auth").is_dir():
                return path
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if isinstance(data.get("auth"), Mapping) and data["auth"]:
            return path
    return None


def authlib_installed() -> bool:
    try:
        from streamlit.auth_util import is_authlib_installed
    except ImportError:  # pragma: no cover - Streamlit without auth support
        return False
    return bool(is_authlib_installed())


def providers(auth: Mapping[str, Any]) -> list[str | None]:
    """``None`` for a provider configured directly in ``[auth]``, then each ``[auth.NAME]``."""
    named: list[str | None] = [k for k, v in auth.items() if isinstance(v, Mapping) and k != "client_kwargs"]
    return ([None] if "client_id" in auth else []) + named


def _auth_settings() -> Mapping[str, Any] | None:
    import streamlit as st

    try:
        auth = st.secrets.get("auth")
    except (FileNotFoundError, KeyError):
        return None
    except Exception:  # noqa: BLE001 - an unreadable secrets file means: not configured
        return None
    return auth if isinstance(auth, Mapping) and auth else None


def gate(required: bool) -> bool:
    """True when the page may render. With login required: the signed-in user's e-mail and a
    log-out button in the sidebar; otherwise only a sign-in button (or the reason sign-in cannot
    work) is shown, and the caller stops the run."""
    if not required:
        return True
    import streamlit as st

    from dashboards.safe_text import md

    auth = _auth_settings()
    if auth is None:
        st.error("Login is required (dashboard.login or GITOPS_DORA_REQUIRE_LOGIN) but Streamlit's "
                 "secrets.toml has no [auth] section, so no page is shown. See docs/dashboard.md, "
                 "Security.", icon=":material/lock:")
        return False
    if not authlib_installed():
        st.error("Login is required but Authlib is not installed (pip install 'streamlit[auth]'), "
                 "so no page is shown.", icon=":material/lock:")
        return False
    if getattr(st.user, "is_logged_in", False):
        who = getattr(st.user, "email", None) or getattr(st.user, "name", None) or "signed in"
        st.sidebar.caption(f"Signed in as {md(who)}")
        st.sidebar.button("Log out", key="auth-logout", on_click=st.logout, icon=":material/logout:")
        return True
    st.title("gitops-dora")
    st.write("Sign in to see the dashboard.")
    for provider in providers(auth) or [None]:
        label = "Log in" if provider is None else f"Log in with {md(provider)}"
        st.button(label, key=f"auth-login-{provider or 'default'}", on_click=st.login,
                  args=(provider,) if provider else (), icon=":material/login:")
    return False
