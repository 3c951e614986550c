"""``gitops-dora dashboard``: serve the Streamlit app on the read snapshot of the selected database."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import typer

from analytics.cli.app import app, get_ctx
from analytics.errors import UserError
from analytics.listening import check_free
from analytics.progress import say

APP_SCRIPT = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
DB_ENV_FOR_APP = "GITOPS_DORA_DB"
CONFIG_ENV_FOR_APP = "GITOPS_DORA_CONFIG"


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: only this machine can connect."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, config_login: bool) -> str | None:
    """One line for stderr when the dashboard listens beyond this machine without working login."""
    from dashboards.auth import auth_section_in, authlib_installed, login_required, secrets_files

    if is_loopback(host):
        return None
    if not login_required(config_login):
        return (f"warning: serving on {host} without login: anyone who can reach it sees the data "
                "(set dashboard.login: true or GITOPS_DORA_REQUIRE_LOGIN=1; docs/dashboard.md, Security)")
    if auth_section_in(secrets_files()) is None:
        return (f"warning: login is required but no [auth] section was found in "
                f"{', '.join(str(p) for p in secrets_files())}: every page will refuse to show data")
    if not authlib_installed():
        return "warning: login is required but Authlib is not installed (pip install 'streamlit[auth]'): " \
               "every page will refuse to show data"
    return None


def streamlit_argv(host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no telemetry, no file watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]


@app.command("dashboard")
def dashboard_command(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="port to listen on"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (0.0.0.0 inside a container)"),
) -> None:
    """Serve the dashboard (read-only; keeps working while a collection runs)."""
    app_ctx = get_ctx(ctx)
    db = app_ctx.db_path
    if not APP_SCRIPT.exists():
        raise UserError(f"dashboard app not found at {APP_SCRIPT}; reinstall gitops-dora")
    check_free(host, port)  # one line now, not Streamlit's after our URL line
    if not db.exists():
        say(f"warning: no database at {db} yet; pages will say what to collect")
    env = dict(os.environ)
    env[DB_ENV_FOR_APP] = str(db)
    env["GITOPS_DORA_DATA_PATH"] = db.data_path
    # Compute the default Overview whenever a new snapshot appears, unless the environment says 0
    # (a dashboard few people open on a small machine, or the test suite, whose pages never show
    # the default window: the warm-up was 1.3-1.8 CPU-s competing with the page a test waited for).
    env.setdefault("GITOPS_DORA_WARMUP", "1")
    config_path = app_ctx.config_path
    if config_path is not None:
        env[CONFIG_ENV_FOR_APP] = str(config_path.resolve())
    warning = None if is_loopback(host) else exposure_warning(host, app_ctx.config.dashboard.login)
    if warning:
        typer.echo(warning, err=True)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    typer.echo(f"gitops-dora dashboard on {db}: http://{shown}:{port}/", err=False)
    sys.stdout.flush()
    sys.stderr.flush()
    # exec: the server takes over this PID, so a supervisor (or a test) stops it with one signal
    os.execve(sys.executable, streamlit_argv(host, port), env)
