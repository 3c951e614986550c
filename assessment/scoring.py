"""From findings and answers to statuses, the level, progress, next steps and principles.

Evidence outranks answers: an answer only decides a capability the evidence left open (then it is
``attested``); when the two disagree, the status follows the evidence and ``conflict`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from assessment.answers import Answer
from assessment.detectors import EXAMPLE, Finding
from assessment.model import Model
from assessment.rules import RULES, UNKNOWN_SOURCES, Outcome, Signals

MAX_EVIDENCE = 10  # per side; a 10k-file repo must not produce a 10k-item list
SATISFYING = ("met", "attested")


def reached(statuses: list[str]) -> bool:
    """A level is reached when none of its capabilities is ``not_met`` and more than half of them
    are met or attested: ``unknown`` (the sources cannot tell) is not failure, but a level cannot
    be reached on unknowns alone."""
    if any(s == "not_met" for s in statuses):
        return False
    return 2 * sum(s in SATISFYING for s in statuses) > len(statuses)


def evidence_item(f: Finding, supports: bool) -> dict[str, Any]:
    return {"path": f.path, "line": f.line, "object": f.object, "detail": f.detail, "supports": supports}


_RECONCILER_OBJECT = ("flux.", "argocd.", "collected.", "cluster.")


def relevance(f: Finding) -> tuple[int, int]:
    """Most relevant first: reconciler objects before other declarations, files in hidden paths
    (CLI schema files, tool configs) last. Stable within a rank, so line order is kept."""
    hidden = bool(f.path) and any(part.startswith(".") for part in (f.path or "").split("/"))
    reconciler = f.signal.startswith(_RECONCILER_OBJECT) or (
        f.signal == "k8s.manifest" and any(g in f.detail for g in ("fluxcd.io/", "argoproj.io/"))
    )
    return (int(hidden), 0 if reconciler else 1)


def _evidence(outcome: Outcome) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for unsorted, supports in ((outcome.supporting, True), (outcome.against, False)):
        findings = sorted(unsorted, key=relevance)
        items += [evidence_item(f, supports) for f in findings[:MAX_EVIDENCE]]
        if len(findings) > MAX_EVIDENCE:
            items.append(
                {
                    "path": None,
                    "line": None,
                    "object": None,
                    "supports": supports,
                    "detail": f"... and {len(findings) - MAX_EVIDENCE} more",
                }
            )
    return items


def decide(outcome: Outcome, answer: Answer | None) -> tuple[str, str | None]:
    """The final status and, when evidence and answer disagree, a sentence showing both."""
    said = None if answer is None else answer.value
    if outcome.status == "met":
        return "met", ("answered no, but evidence shows it is in place" if said is False else None)
    if outcome.refuted:
        return "not_met", (
            "answered yes, but evidence shows it is missing: " + (outcome.note or "see evidence")
            if said is True
            else None
        )
    if said is True:
        return "attested", None
    if said is False:
        return "not_met", None
    return outcome.status, None


def score(
    model: Model, findings: Iterable[Finding], answers: dict[str, Answer] | None = None
) -> dict[str, Any]:
    """The assessment in the JSON shape of ``gitops-dora assess --format json``."""
    answers = answers or {}
    deployed: list[Finding] = []
    examples: list[Finding] = []
    for f in findings:
        if f.signal.startswith(EXAMPLE):
            examples.append(replace(f, signal=f.signal[len(EXAMPLE):]))
        else:
            deployed.append(f)
    signals = Signals(deployed)
    example_signals = Signals(examples)
    capabilities: list[dict[str, Any]] = []
    for cap in model.capabilities:
        outcome = RULES[cap.id](signals)
        answer = answers.get(cap.id)
        status, conflict = decide(outcome, answer)
        # The same rule over examples, docs and tests: shown apart, never counted.
        seen = RULES[cap.id](example_signals) if examples else None
        capabilities.append(
            {
                "id": cap.id,
                "level": cap.level,
                "title": cap.title,
                "status": status,
                "evidence": _evidence(outcome),
                "note": outcome.note if status != "met" else None,
                "answer": None if answer is None else ("yes" if answer.value else "no"),
                "answer_note": None if answer is None else answer.note,
                "conflict": conflict,
                "seen_in_examples": [
                    evidence_item(f, True) for f in (seen.supporting if seen else [])[:MAX_EVIDENCE]
                ],
            }
        )
    by_id = {c["id"]: c for c in capabilities}
    levels = []
    level: int | None = None
    for lvl in model.levels:
        statuses = [by_id[c.id]["status"] for c in lvl.capabilities]
        met = reached(statuses)
        levels.append(
            {
                "level": lvl.level,
                "name": lvl.name,
                "met": met,
                "progress": round(sum(s == "met" for s in statuses) / len(statuses), 4),
                "blocking": [c.id for c in lvl.capabilities if by_id[c.id]["status"] == "not_met"],
                "undecided": [c.id for c in lvl.capabilities if by_id[c.id]["status"] == "unknown"],
            }
        )
        if met and (level is None and lvl.level == 0 or level == lvl.level - 1):
            level = lvl.level
    next_level = 0 if level is None else level + 1
    blocking = []
    if next_level < len(model.levels):
        for cap in model.levels[next_level].capabilities:
            if by_id[cap.id]["status"] == "not_met":
                blocking.append(
                    {
                        "capability": cap.id,
                        "level": next_level,
                        "title": cap.title,
                        "why": by_id[cap.id]["note"],
                        "action": cap.action,
                        "satisfied_by": cap.evidence,
                    }
                )
    # Undecided: every unknown up to the next level (a reached level may still hold some).
    undecided = [
        {
            "capability": cap.id,
            "level": cap.level,
            "title": cap.title,
            "why": by_id[cap.id]["note"],
            "question": cap.question,
            "source": UNKNOWN_SOURCES.get(cap.id, "attest it in an answers file"),
        }
        for cap in model.capabilities
        if cap.level <= next_level and by_id[cap.id]["status"] == "unknown"
    ]
    # Next steps: fix what is blocking the next level; for what is undecided there, a question or a
    # source to add, never a fix for something that was not found.
    next_steps: list[dict[str, Any]] = [{"kind": "fix", **b} for b in blocking]
    for u in undecided:
        if u["level"] == next_level:
            next_steps.append(
                {
                    "kind": "decide",
                    "capability": u["capability"],
                    "level": u["level"],
                    "title": u["title"],
                    "action": f"{u['why'] or 'undecided'}: answer \"{u['question']}\" in an answers "
                    f"file, or {u['source']}",
                    "satisfied_by": model.capability(u["capability"]).evidence,
                }
            )
    principles = []
    for pr in model.principles:
        statuses = [by_id[c]["status"] for c in pr.capabilities]
        if all(s == "met" for s in statuses):
            status = "satisfied"
        elif any(s in SATISFYING for s in statuses):
            status = "partial"
        else:
            status = "not_satisfied"
        evidence = [
            {"capability": c, "status": by_id[c]["status"], **item}
            for c in pr.capabilities
            for item in by_id[c]["evidence"][:3]
        ]
        principles.append(
            {
                "id": pr.id,
                "name": pr.name,
                "status": status,
                "capabilities": {c: by_id[c]["status"] for c in pr.capabilities},
                "evidence": evidence,
            }
        )
    return {
        "level": level,
        "levels": levels,
        "capabilities": capabilities,
        "principles": principles,
        "next_steps": next_steps,
        "blocking": blocking,
        "undecided": undecided,
    }
