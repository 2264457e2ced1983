"""What an ops row records of a run's work, stated by the library's summaries (pure: no Prefect, no I/O).

Each summary (ingest, validation, training, evaluation, promotion, fine-tune, embedding) has a typed
`facts()` naming its own fields, so a renamed field fails mypy instead of writing None into the ops table,
and a `record()`: its fields as JSON-clean data plus those facts, which is what a flow returns. A flow of
several steps joins its steps' facts with `then`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import PurePath
from typing import Any

PASSED, FAILED, NONE = "passed", "failed", "none"
FACTS = "facts"  # the key of a record that holds its facts


@dataclass(frozen=True)
class RunFacts:
    """Counts, URIs, versions and metric values only: never a source path, an identifier or a message."""

    dataset_version: str | None = None
    files_seen: int | None = None
    files_ingested: int | None = None
    files_quarantined: int | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # reason -> files (reports: report:<reason>)
    phi_gate: str = NONE  # passed | failed | none (the run did not gate)
    validation: str = NONE  # passed | failed | none (the run did not validate)
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None  # the pretraining run, whose curves the dashboard draws
    model_versions: tuple[str, ...] = ()  # models:/<name>/<version> the run made or judged
    champion: str | None = None  # models:/... holding @champion after the run, when the run decided it

    def record(self) -> dict[str, Any]:
        return dict(json_clean(self))

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> RunFacts:
        """The facts a flow returned (after Prefect's result handling); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (record or {}).items() if k in known}
        values["model_versions"] = tuple(values.get("model_versions") or ())
        return cls(**values)

    def then(self, later: RunFacts) -> RunFacts:
        """These facts followed by a later step's: its values win where it has any; metrics and models add up."""
        joined: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(later, f.name)
            if f.name == "metrics":
                joined[f.name] = {**mine, **theirs}
            elif f.name == "model_versions":  # a model trained, then judged, is listed once
                joined[f.name] = tuple(dict.fromkeys(mine + theirs))
            elif f.name in ("phi_gate", "validation"):
                joined[f.name] = theirs if theirs != NONE else mine
            else:
                joined[f.name] = theirs if theirs not in (None, {}) else mine
        return RunFacts(**joined)


def joined(steps: Iterable[Mapping[str, Any] | None]) -> RunFacts:
    """The facts of several steps' records, in the order they ran."""
    facts = RunFacts()
    for step in steps:
        if step is not None:
            facts = facts.then(RunFacts.from_record(step.get(FACTS)))
    return facts


def chain_facts(
    ingest: Mapping[str, Any],
    quality: Mapping[str, Any],
    trained: Mapping[str, Any],
    finetunes: Iterable[Mapping[str, Any]],
    champion: str | None,
) -> RunFacts:
    """The whole chain's row: ingest's counts, the validated version and the training run's numbers (evaluation
    and fine-tunes have rows of their own), every model the chain made, and who holds @champion after it."""
    made = RunFacts(model_versions=tuple(str(tuned["model_uri"]) for tuned in finetunes), champion=champion)
    return joined([ingest, quality, trained]).then(made)


def metric_values(values: Mapping[str, Any], keys: Iterable[str] | None = None) -> dict[str, float]:
    """Numeric metrics worth a row: not MLflow's system/ metrics; only `keys` when given."""
    wanted = None if keys is None else set(keys)
    return {
        k: float(v)
        for k, v in values.items()
        if not k.startswith("system/") and (wanted is None or k in wanted) and isinstance(v, int | float)
    }


def summary_record(summary: Any, facts: RunFacts, **derived: Any) -> dict[str, Any]:
    """A summary dataclass as JSON-clean data, with derived values (properties) and its facts."""
    return dict(json_clean(summary)) | json_clean(derived) | {FACTS: facts.record()}


def json_clean(value: Any) -> Any:
    """Dataclasses and mappings as plain dicts with string keys, tuples and sets as lists, paths as strings.

    Not dataclasses.asdict: it rebuilds a Counter from its (key, count) pairs, so Counter({"a": 2}) came out as
    Counter({("a", 2): 1}) (an ops row once counted "report:('duplicate', 0)").
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_clean(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_clean(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return value
