"""Step 20: mine the generated repositories with ``gitops-dora collect git``, as a user would.

Deployments come from reconciler history (step 50), so app release tags are NOT deployments
here: ``--deploy-tags`` is a pattern no tag matches (the demo config's ``deployments.git.tags``
would otherwise apply), and production is not counted twice. The config repository is mined for
its commits only.
"""

from __future__ import annotations

from analytics.demo.context import DemoContext

NO_TAG = "(?!)"  # a regex that matches nothing: tags are releases, reconcilers say what was deployed


def run(demo: DemoContext) -> None:
    manifest = demo.load_manifest()
    for service in manifest["services"]:
        demo.cli(
            "collect", "git", str(demo.workdir / service["repo"]),
            "--service", service["name"],
            "--environment", "production",
            "--deploy-tags", NO_TAG,
        )
    demo.cli("collect", "git", str(demo.workdir / manifest["config_repo"]["path"]))
