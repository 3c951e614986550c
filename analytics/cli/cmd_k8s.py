"""``gitops-dora collect k8s``: Argo CD and Flux state (and their Events) from a cluster."""

from __future__ import annotations

import typer

from analytics.cli.app import collect_app, get_ctx


@collect_app.command("k8s")
def collect_k8s_command(
    ctx: typer.Context,
    kubeconfig: str | None = typer.Option(
        None, "--kubeconfig", help="kubeconfig file [in-cluster, then ~/.kube/config]"
    ),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context [current context]"),
    namespace: str | None = typer.Option(
        None, "--namespace", "-n", help="one namespace [connections.kubernetes.namespaces, else all]"
    ),
    watch: bool = typer.Option(
        False, "--watch", help="after the list, keep watching and store changes as they come"
    ),
) -> None:
    """List Applications, Kustomizations, HelmReleases and their Events; derive deployments."""
    import signal

    from analytics.collectors.k8s import Watcher, collect
    from analytics.collectors.kubeconfig import api_client
    from analytics.progress import say

    app_ctx = get_ctx(ctx)
    config = app_ctx.config
    k8s_cfg = config.connections.kubernetes
    kubeconfig = kubeconfig or k8s_cfg.kubeconfig
    context = context or k8s_cfg.context
    namespaces = [namespace] if namespace else list(k8s_cfg.namespaces)
    connection = api_client(kubeconfig, context)
    # The context actually used, not "current-context": it keys the collector state and the
    # collection runs, which two kubeconfigs with different current contexts must not share.
    target = f"{connection.context}/{','.join(namespaces) or '*'}"
    client = connection.client
    if not watch:
        summary, notes = collect(app_ctx.db_path, config, client, namespaces, target)
        for note in notes:
            say(f"note: {note}")
        say(f"{target}: {summary.line()}")
        return
    watcher = Watcher(app_ctx.db_path, config, client, namespaces, target, say=say)

    def _stop(signum: int, _frame: object) -> None:
        watcher.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stats = watcher.run()
    say(
        f"stopped: {stats.batches} batches committed, {stats.events} new reconciler events, "
        f"{stats.relists} relists after 410 Gone, {stats.reconnects} reconnects"
    )
