"""Step 20: mine the generated repositories with ``gitops-dora collect git``, as a user would.

Until reconciler history is part of the demo, each app's semver release tags are its production
deployments (``--deploy-tags``). The config repository is mined for its commits only.
"""

from __future__ import annotations

from analytics.demo.context import DemoContext


def run(demo: DemoContext) -> None:
    manifest = demo.load_manifest()
    for service in manifest["services"]:
        demo.cli(
            "collect", "git", str(demo.workdir / service["repo"]),
            "--service", service["name"],
            "--environment", "production",
            "--deploy-tags", manifest["release_tag_pattern"],
        )
    demo.cli("collect", "git", str(demo.workdir / manifest["config_repo"]["path"]))
