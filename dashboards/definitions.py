"""The metric definitions the dashboard shows in place: one sentence per metric, quoted from
docs/metrics.md (tests/test_dashboard_leader.py checks each is there word for word), the docs
section it comes from, and which sections each page's "How this is computed" links.

Sections are opened on the Definitions page (``screens/definitions.py``), which shows the docs
themselves when the checkout has them and these sentences otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
DOCS = ("metrics.md", "maturity.md")


@dataclass(frozen=True)
class MetricDef:
    key: str                 # stable id (tile key, CSV column stem)
    title: str               # full title, shown untruncated
    field: str               # the `metrics --format json` field the tile shows
    definition: str          # one sentence, verbatim from docs/metrics.md (Markdown of the docs)
    section: str             # the docs/metrics.md heading it comes from
    kind: str                # "per_week" | "hours" | "rate"
    lower_is_better: bool
    benchmark: str | None    # the benchmark table's metric that rates exactly this field, if any
    smoothed: bool = False   # trend over rolling 4 weeks (a rate of small counts)
    numerator: str | None = None    # for smoothed rates: weekly counts pooled over 4 weeks
    denominator: str | None = None


METRICS: tuple[MetricDef, ...] = (
    MetricDef(
        "deployment_frequency", "Deployment frequency", "deployments_per_week",
        "`deployments_per_week` = deployments × 7 ÷ the period's length in days (fractional days "
        "allowed), so a clipped trend period (a partial first or last week/month) gives a true rate, "
        "not a count.",
        "Deployment frequency and deployment days", "per_week", False, "deployment_frequency",
    ),
    MetricDef(
        "lead_time", "Change lead time (median)", "lead_time_median_hours",
        "*Change lead time* is measured per change (commit) that a deployment shipped: lead time = "
        "deployment time − start of the change",
        "Lead time", "hours", True, "lead_time",
    ),
    MetricDef(
        "change_failure_rate", "Change failure rate", "change_failure_rate",
        "`change_failure_rate = failed_deployments / deployment_attempts`, over the deployments whose "
        "deployment time lies in the window [since, until)",
        "Change failure rate", "rate", True, "change_failure_rate",
        smoothed=True, numerator="failed_deployments", denominator="deployment_attempts",
    ),
    MetricDef(
        "failed_deployment_recovery", "Failed deployment recovery time (median)",
        "failed_deployment_recovery_median_hours",
        "For each failed deployment in the window: recovery time = recovered at − deployed at, where "
        "*recovered at* comes from its incidents when it has any (the latest resolution; unrecovered "
        "while one is open), and otherwise from the first deployment that restored service after its "
        "revert, rollback or failed rollout.",
        "Failed deployment recovery time", "hours", True, "failed_deployment_recovery_time",
    ),
    MetricDef(
        "time_to_restore", "Time to restore (incidents, median)", "time_to_restore_median_hours",
        "The pre-2023 DORA measure, kept for the older benchmark years: for each incident *created* in "
        "the window and resolved, `resolved_at − created_at`; reported as `time_to_restore_median_hours`.",
        "Time to restore", "hours", True, "time_to_restore",
    ),
    MetricDef(
        "rework_rate", "Rework rate", "rework_rate",
        "`rework_rate = rework_deployments / deployment_attempts` (same denominator as CFR).",
        "Rework rate", "rate", True, None,
        smoothed=True, numerator="rework_deployments", denominator="deployment_attempts",
    ),
)
BY_KEY = {m.key: m for m in METRICS}

# What each metric's help adds after the quoted definition (the dashboard's own words).
EXTRA = {
    "deployment_frequency": "Successful deployments only.",
    "lead_time": "The tile shows the median over every counted change (baselines and negative lead "
                 "times left out).",
    "change_failure_rate": "A deployment is failed when an incident, a revert, a failed rollout or a "
                           "rollback names it.",
    "failed_deployment_recovery": "The tile shows the median; unrecovered deployments are left out.",
    "time_to_restore": "The tile shows the median; open incidents are left out.",
    "rework_rate": "Rework: a deployment that ships a revert or is a rollback, or ships a change "
                   "linked to an incident (a hotfix).",
}


def plain(markdown: str) -> str:
    """The docs' Markdown without emphasis and code marks, whitespace collapsed (for comparing)."""
    return " ".join(re.sub(r"[`*]", "", markdown).split())


def slug(heading: str) -> str:
    """The anchor of a docs heading ("Change failure rate" -> "change-failure-rate")."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def help_text(metric: MetricDef) -> str:
    """The one-sentence definition (emphasis dropped, code kept) and what the tile adds to it."""
    sentence = metric.definition.replace("*", "").rstrip(".")
    return f"{sentence}. {EXTRA[metric.key]} (docs/metrics.md, {metric.section})"


@dataclass(frozen=True)
class DocLink:
    label: str
    doc: str       # file in docs/
    section: str   # its "## " heading


def _m(section: str, label: str | None = None) -> DocLink:
    return DocLink(label or section, "metrics.md", section)


PAGE_DOCS: dict[str, tuple[DocLink, ...]] = {
    "overview": (
        _m("Deployment frequency and deployment days", "Deployment frequency"), _m("Lead time"),
        _m("Change failure rate"), _m("Failed deployment recovery time"), _m("Time to restore"),
        _m("Rework rate"), _m("Ratings against the DORA benchmarks"),
        _m("Group-by, trend and compare-previous"), _m("Window edges"),
    ),
    "teams": (
        _m("Group-by, trend and compare-previous"), _m("Ratings against the DORA benchmarks"),
        _m("Median and p90"),
    ),
    "throughput": (
        _m("Deployment frequency and deployment days", "Deployment frequency"), _m("Lead time"),
        _m("Baseline (first) deployment"), _m("Pull requests and lead time"),
    ),
    "stability": (
        _m("Failed deployment"), _m("Change failure rate"), _m("Failed deployment recovery time"),
        _m("Time to restore"), _m("Rework rate"), _m("Incidents and their attribution to a deployment"),
    ),
    "deployments": (
        _m("What counts as a deployment (git)"), _m("Deployments from reconcilers"),
        _m("Which deployment a commit belongs to"), _m("Failed deployment"),
    ),
    "maturity": (
        DocLink("The model", "maturity.md", "The model"), DocLink("Scoring", "maturity.md", "Scoring"),
        DocLink("History", "maturity.md", "History"),
    ),
    "data_health": (
        _m("Lead time"), _m("Incidents and their attribution to a deployment"),
        _m("Which deployment a commit belongs to"),
    ),
}


def doc_sections(doc: str) -> list[tuple[str, str]] | None:
    """``docs/<doc>`` as (heading, body) per "## " section (the text before the first is under the
    document's title); None when the docs are not installed (a wheel or an image)."""
    path = DOCS_DIR / doc
    try:
        text = path.read_text()
    except OSError:
        return None
    sections: list[tuple[str, str]] = []
    title, body = "", list[str]()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("# ") and not sections and not body:
            title = line[2:].strip()
            continue
        if not in_code and line.startswith("## "):
            sections.append((title, "\n".join(body).strip()))
            title, body = line[3:].strip(), []
            continue
        body.append(line)
    sections.append((title, "\n".join(body).strip()))
    return [(h, b) for h, b in sections if h]
