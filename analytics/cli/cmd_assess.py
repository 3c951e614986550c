"""``gitops-dora assess``: GitOps maturity (Level 0-3) from repository, cluster and collected evidence.

``assess PATH`` is a trial: it prints the result and stores nothing. ``--store`` keeps it (and the
``--history`` timeline) for the dashboard, as the demo and a scheduled job do; ``--forget TARGET``
deletes what was stored for a target.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from analytics.cli.app import app, get_ctx
from analytics.cli.output import Format, safe_text
from analytics.json_output import dumps


@app.command("assess")
def assess_command(
    ctx: typer.Context,
    targets: list[str] | None = typer.Argument(
        None, metavar="PATH_OR_URL", help="config/app repositories (paths, bare repos or git URLs)",
        show_default=False,
    ),
    answers: Path | None = typer.Option(None, "--answers", help="self-assessment answers YAML"),
    at: str | None = typer.Option(None, "--at", help="assess this git revision without checking it out"),
    history: str | None = typer.Option(
        None,
        "--history",
        help="also assess the last commit of each month (monthly) and store the maturity timeline",
    ),
    cluster_dump: Path | None = typer.Option(
        None,
        "--cluster-dump",
        help="kubectl get crd,ns,deploy,sts -A -o yaml output to use as cluster evidence",
    ),
    kube_context: str | None = typer.Option(
        None,
        "--kube-context",
        help="read cluster evidence from this kubeconfig context ('' for the current one)",
    ),
    fmt: Format = typer.Option(
        Format.table, "--format", metavar="<table|json>",
        help="table (for reading) or json (every field, for scripts); no csv: an assessment is "
             "nested, not rows",
    ),
    store: bool = typer.Option(
        False, "--store",
        help="keep the result (and the --history timeline) in the store for the dashboard; "
             "without it the assessment is only printed",
    ),
    include_examples: bool = typer.Option(
        False, "--include-examples",
        help="count examples/, docs/, tests/, e2e/, hack/... (the model's not_deployed folders) as "
             "deployed; by default evidence there is only shown as 'seen in examples'",
    ),
    forget: str | None = typer.Option(
        None, "--forget", metavar="TARGET",
        help="delete the stored assessments of TARGET (the name `assess` printed, e.g. repo or a+b)",
    ),
) -> None:
    """Score GitOps maturity (Level 0-3) and OpenGitOps principles (stored only with --store)."""
    from analytics.errors import UserError
    from analytics.progress import say
    from assessment.runner import AssessRequest, run_assessment
    from assessment.runner import forget as forget_target

    if forget is not None:
        if targets or store:
            raise UserError("--forget TARGET takes no PATH_OR_URL and no --store")
        removed = forget_target(get_ctx(ctx).db_path, forget)
        say(f"forgot {removed} stored assessments of {forget}")
        return
    if not targets:
        raise UserError("assess needs at least one PATH_OR_URL (or --forget TARGET)")
    if fmt == Format.csv:
        raise UserError("assess supports --format table or json")
    outcome = run_assessment(
        AssessRequest(
            specs=targets,
            db_path=get_ctx(ctx).db_path,
            answers=answers,
            at=at,
            history=history,
            cluster_dump=cluster_dump,
            kube_context=kube_context,
            store=store,
            include_examples=include_examples,
        )
    )
    if fmt == Format.json:
        payload: Any = outcome.result if history is None else {**outcome.result, "history": outcome.history}
        sys.stdout.write(dumps(payload) + "\n")
        return
    _print_tables(outcome.target, outcome.result, outcome.history)


def _first_evidence(cap: dict[str, Any]) -> str:
    """The one piece of evidence the table has room for: for a capability that is not met, what
    counts against it (or the note saying what is missing) rather than what supports it, so the
    row explains its status."""
    items = cap["evidence"]
    if cap["status"] == "not_met":
        against = [item for item in items if not item["supports"]]
        if not against and cap.get("note"):
            return str(cap["note"])
        items = against or items
    for item in items:
        where = item["object"] or (f"{item['path']}:{item['line']}" if item["line"] else item["path"])
        return f"{'' if item['supports'] else 'against: '}{where} {item['detail']}"
    return cap.get("note") or ""


# Columns of free text (evidence, why, action...): they take the width the short ones leave and
# wrap between words, folding a long path rather than cutting it. Every other column never wraps.
PROSE = {"evidence", "answer", "why", "action", "question", "source to add", "satisfied by", "name",
         "principle"}


def _table(title: str, columns: tuple[str, ...]) -> Any:
    """A table as the read commands draw them (no side borders, a rule under the header), so an
    80-column terminal keeps most of its width for the evidence."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left")
    for col in columns:
        if col in PROSE:
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, no_wrap=True)
    return table


def _print_tables(target: str, result: dict[str, Any], history: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console()
    level = result["level"]
    # Names and evidence come from the assessed files: Text, never markup (see output.safe_text).
    console.print(Text.assemble(
        safe_text(target, "bold"), ": GitOps maturity level ",
        safe_text("none (Level 0 not met)" if level is None else level, "bold"),
    ))
    caps = _table("Capabilities", ("level", "capability", "status", "evidence", "answer"))
    for cap in result["capabilities"]:
        answer = cap["answer"] or ""
        if cap["conflict"]:
            answer = f"{answer} ({cap['conflict']})"
        caps.add_row(*(safe_text(v) for v in (cap["level"], cap["id"], cap["status"], _first_evidence(cap),
                                               answer)))
    console.print(caps)
    levels = _table("Levels", ("level", "name", "met", "progress"))
    for lvl in result["levels"]:
        levels.add_row(*(safe_text(v) for v in (
            lvl["level"], lvl["name"], "yes" if lvl["met"] else "no", f"{lvl['progress']:.0%}"
        )))
    console.print(levels)
    principles = _table("OpenGitOps principles", ("principle", "status"))
    for pr in result["principles"]:
        principles.add_row(safe_text(pr["name"]), safe_text(pr["status"]))
    console.print(principles)
    if result.get("blocking"):
        blocking = _table("Blocking (not met)", ("level", "capability", "why", "action"))
        for b in result["blocking"]:
            blocking.add_row(*(safe_text("" if b[k] is None else b[k])
                                for k in ("level", "capability", "why", "action")))
        console.print(blocking)
    if result.get("undecided"):
        undecided = _table("Undecided (unknown: answer the question or add the source)",
                           ("level", "capability", "why", "question", "source to add"))
        for u in result["undecided"]:
            undecided.add_row(*(safe_text("" if u[k] is None else u[k])
                                 for k in ("level", "capability", "why", "question", "source")))
        console.print(undecided)
    seen = [c for c in result["capabilities"] if c.get("seen_in_examples")]
    if seen:
        examples = _table("Seen in examples (not deployed, never counted as met)", ("capability", "evidence"))
        for cap in seen:
            item = cap["seen_in_examples"][0]
            where = f"{item['path']}:{item['line']} {item['detail']}"
            examples.add_row(safe_text(cap["id"]), safe_text(where))
        console.print(examples)
    if result["next_steps"]:
        steps = _table("Next steps", ("capability", "kind", "action", "satisfied by"))
        for step in result["next_steps"]:
            steps.add_row(*(safe_text(step.get(k) or "") for k in ("capability", "kind", "action",
                                                                    "satisfied_by")))
        console.print(steps)
    if history:
        timeline = _table("Maturity by month", ("month", "level", "L0", "L1", "L2", "L3"))
        for point in history:
            timeline.add_row(*(safe_text(v) for v in (
                point["period"],
                "-" if point["level"] is None else str(point["level"]),
                *(f"{lvl['progress']:.0%}" for lvl in point["levels"]),
            )))
        console.print(timeline)
