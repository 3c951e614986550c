"""``gitops-dora serve-webhooks``: the webhook receiver (secrets come from the environment only)."""

from __future__ import annotations

import typer

from analytics.cli.app import app, get_ctx


@app.command("serve-webhooks")
def serve_webhooks(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8787, "--port", help="TCP port"),
    insecure: bool = typer.Option(
        False, "--insecure", help="accept unsigned deliveries for providers whose secret is unset"
    ),
) -> None:
    """Receive GitHub, GitLab, Flux and Argo CD webhooks into the database.

    Secrets: GITOPS_DORA_GITHUB_SECRET, GITOPS_DORA_GITLAB_TOKEN and each provider's own variable.
    """
    from analytics.webhooks.server import serve

    app_ctx = get_ctx(ctx)
    serve(app_ctx.db_path, app_ctx.config, host, port, insecure)
