"""Cross-check with Pelorus (docs/metrics.md, "Differences from peers").

The fixture rebuilds the series of Pelorus' Prometheus rule test (``_test/prometheus/test.yaml``,
first test): ``deploy_timestamp{app, exported_namespace, image_sha}``, ``commit_timestamp{app, commit,
image_sha}`` and ``failure_creation/resolution_timestamp{app, issue_number}``. Each deployment is
imported with the commit its image was built from (or the image digest when no commit series names
it), each commit series as a commit, each failure as an incident (environment: production).

Pelorus (rules in charts/pelorus/templates/prometheus-rules.yaml):
    lead time by commit = first deploy of its image, any namespace - commit time:
        basic-nginx b4db23e 111 s, 9421e28 282 s (dev only), c8683ac 2,918,139 s;
        spring-boot ea67853 1,028,589 s
        by app (mean) 972,844 and 1,028,589; global (mean of means) 1,000,716.5 s
    time to restore: MDT-6 4,575 s, MDT-4 37 s (basic-nginx), MDT-3 278 s (spring-boot)
        by app 2,306 and 278; global 1,292 s
    change failure rate: failures / deployed commits: basic-nginx 2/3, spring-boot 1/1; global 0.8333
    deployments of basic-nginx: 6 series (5 prod, 1 dev)
gitops-dora (production unless noted):
    basic-nginx deployments by time: c291840 (baseline), 3744528, 1e4ae2d (images without a commit),
        a344eb5 = b4db23e at 1594759735 -> b4db23e 111 s, 3131dfa = c8683ac at 1597679100 -> 800f7c6
        2,919,312 s, 9421e28 2,918,322 s, c8683ac 2,918,139 s (commits chained by time)
    spring-boot: the first deployment (baseline) ships ea67853 and 1a97f4b; the two later ones
        redeploy ea67853: no lead time
    median over basic-nginx's 4 changes = (2,918,139 + 2,918,322) / 2 = 2,918,230.5 s
    time to restore = median(4575, 37, 278) = 278 s; MDT-7 (app foo) is open
    no failure was created within 7 days after a production deployment of its app: 0 failed of 8
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from tests.stability_env import run_cli_inprocess as run_cli
from tests.stability_env import write_csv

NGINX, SPRING = "basic-nginx", "kenwilli-basic-spring-boot"
DEPLOY = [  # app, exported_namespace, image (first hex digits of image_sha), value
    (NGINX, "basic-nginx-prod", "a344eb5673e7", 1594759735),
    (NGINX, "basic-nginx-dev", "9e1348e33d41", 1594761060),
    (NGINX, "basic-nginx-prod", "3131dfa239ec", 1597679100),
    (NGINX, "basic-nginx-prod", "c291840e51a8", 1594164059),
    (NGINX, "basic-nginx-prod", "37452860725f", 1594759265),
    (NGINX, "basic-nginx-prod", "1e4ae2dd0ee1", 1594759432),
    (SPRING, f"{SPRING}-prod", "08ab5ef50c3f", 1591796089),
    (SPRING, f"{SPRING}-prod", "46332b417660", 1591813199),
    (SPRING, f"{SPRING}-prod", "382947b77566", 1591814663),
]
COMMIT = [  # app, commit, image, value
    (NGINX, "c8683ac2ae37cb9dd7c4c576747bf8f3d74c4f28", "3131dfa239ec", 1594760961),
    (NGINX, "b4db23e0d91699165e92ea38ba03ac277c778397", "a344eb5673e7", 1594759624),
    (NGINX, "800f7c667ca08a4b596dc710de084de934facdc8", "748783c99fd6", 1594759788),
    (NGINX, "9421e2898111a38fd5b6a17d6c94c2e3569b5c2f", "9e1348e33d41", 1594760778),
    (NGINX, "c8683ac2ae37cb9dd7c4c576747bf8f3d74c4f28", "d33162494e4b", 1594760961),
    (SPRING, "1a97f4bb5f05c9ef2e3791de01c02cb0610663e6", "92e61fcec3cb", 1590532194),
    (SPRING, "ea67853d8f9b4f43400500f807d72cdfb5b0936d", "08ab5ef50c3f", 1590767500),
    (SPRING, "ea67853d8f9b4f43400500f807d72cdfb5b0936d", "46332b417660", 1590767500),
    (SPRING, "ea67853d8f9b4f43400500f807d72cdfb5b0936d", "382947b77566", 1590767500),
]
FAILURE_CREATED = [
    ("foo", "MDT-7", 1600719815),
    (NGINX, "MDT-6", 1597170899),
    (NGINX, "MDT-4", 1588262309),
    (SPRING, "MDT-3", 1587750306),
]
FAILURE_RESOLVED = {"MDT-6": 1597175474, "MDT-4": 1588262346, "MDT-3": 1587750584}


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pelorus")
    store = tmp / "store.ducklake"
    built_from = {image: commit for _, commit, image, _ in COMMIT}
    commits: dict[tuple[str, str], int] = {}
    for app, commit, _, at in COMMIT:
        commits[(app, commit)] = at
    rows = []
    for app in (NGINX, SPRING):  # an app's commits chained in time order (the series carry no parents)
        chain = sorted((at, c) for (a, c), at in commits.items() if a == app)
        rows += [(app, c, chain[i - 1][1] if i else "", iso(at)) for i, (at, c) in enumerate(chain)]
    files = [
        write_csv(tmp / "commits.csv", ["repository", "sha", "parents", "authored_at"], rows),
        write_csv(
            tmp / "deployments.csv",
            ["id", "service", "environment", "revision", "deployed_at", "repository"],
            [
                (
                    f"{ns}/{image}",
                    app,
                    "dev" if ns.endswith("-dev") else "production",
                    built_from.get(image, f"sha256:{image}"),
                    iso(at),
                    app,
                )
                for app, ns, image, at in DEPLOY
            ],
        ),
        write_csv(
            tmp / "incidents.csv",
            ["id", "service", "created_at", "resolved_at"],
            [
                (issue, app, iso(at), iso(FAILURE_RESOLVED[issue]) if issue in FAILURE_RESOLVED else "")
                for app, issue, at in FAILURE_CREATED
            ],
        ),
    ]
    run_cli(store, "import", *map(str, files))
    return store


def groups(db: Path, *args: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = run_cli(
        db, "metrics", "--since", "2020-01-01", "--until", "2021-01-01", "--format", "json", *args
    ).stdout
    result = {}
    for g in json.loads(out)["groups"]:
        result[tuple(g[k] for k in ("service", "environment") if k in g)] = g
    return result


# Pelorus' recording rules, transcribed, to check the hand-worked values against the same series
def pelorus_lead_by_commit() -> dict[tuple[str, str], int]:
    deploys: dict[tuple[str, str], list[int]] = {}
    for app, _, image, at in DEPLOY:
        deploys.setdefault((app, image), []).append(at)
    out: dict[tuple[str, str], int] = {}
    for app, commit, image, at in COMMIT:
        if (
            app,
            image,
        ) in deploys:  # min by (app, commit) (deploy_timestamp - on(app, image_sha) commit_timestamp)
            lead = min(deploys[(app, image)]) - at
            out[(app, commit)] = min(out.get((app, commit), lead), lead)
    return out


def test_lead_time_per_change_against_mean_of_app_means(db: Path) -> None:
    by_commit = pelorus_lead_by_commit()
    nginx = [v for (a, _), v in by_commit.items() if a == NGINX]
    spring = [v for (a, _), v in by_commit.items() if a == SPRING]
    assert sorted(nginx) == [111, 282, 2918139] and spring == [1028589]
    assert mean([mean(nginx), mean(spring)]) == pytest.approx(1000716.5)  # their sdp:lead_time:global

    ours = groups(db)
    assert ours[(NGINX, "production")]["lead_time_median_hours"] * 3600 == pytest.approx(2918230.5)
    assert ours[(NGINX, "production")]["baseline_deployments"] == 1
    assert ours[(NGINX, "dev")]["lead_time_median_hours"] is None  # the dev deployment is dev's baseline
    assert ours[(SPRING, "production")]["lead_time_median_hours"] is None  # baseline, then redeploys
    assert ours[(SPRING, "production")]["baseline_changes"] == 2
    rows = json.loads(
        run_cli(db, "changes", "--service", NGINX, "--environment", "production", "--format", "json").stdout
    )
    counted = sorted(round(r["lead_hours"] * 3600) for r in rows if r["counted"])
    assert counted == [111, 2918139, 2918322, 2919312]


def test_deployments_counted_per_environment(db: Path) -> None:
    ours = groups(db)
    assert ours[(NGINX, "production")]["deployments"] == 5
    assert ours[(NGINX, "dev")]["deployments"] == 1
    assert sum(1 for app, *_ in DEPLOY if app == NGINX) == 6  # Pelorus' count for the app


def test_restore_and_failure_rate_without_attribution(db: Path) -> None:
    restore = {
        issue: FAILURE_RESOLVED[issue] - at for _, issue, at in FAILURE_CREATED if issue in FAILURE_RESOLVED
    }
    assert restore == {"MDT-6": 4575, "MDT-4": 37, "MDT-3": 278}
    by_app = {NGINX: mean([4575, 37]), SPRING: 278}
    assert by_app[NGINX] == 2306 and mean(by_app.values()) == 1292  # sdp:time_to_restore:global
    deployed_commits = {
        a: sum(1 for (app, _) in pelorus_lead_by_commit() if app == a) for a in (NGINX, SPRING)
    }
    failures = {a: sum(1 for app, *_ in FAILURE_CREATED if app == a) for a in (NGINX, SPRING)}
    rates = {a: failures[a] / deployed_commits[a] for a in (NGINX, SPRING)}
    assert rates == {NGINX: pytest.approx(2 / 3), SPRING: 1.0}
    assert mean(rates.values()) == pytest.approx(0.8333333)  # sdp:change_failure_rate:global

    ours = groups(db, "--group-by", "environment")
    production = ours[("production",)]
    assert production["time_to_restore_median_hours"] * 3600 == pytest.approx(278)
    assert (production["incidents"], production["open_incidents"], production["unattributed_incidents"]) == (
        4,
        1,
        4,
    )
    assert (production["failed_deployments"], production["deployment_attempts"]) == (0, 8)
    assert production["change_failure_rate"] == 0
