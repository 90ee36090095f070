"""Replaying a pack: the journaled steps re-run from the starting state through the real engine
(:class:`emon.geofence.Engine`), with the pack's order versions and settings; the decisions it makes are
compared with the decisions on record. Pure: no I/O, no clock (each step carries its decision time).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from emon.case import Case
from emon.evidence.errors import EvidenceError
from emon.fix import Fix, FixSource
from emon.geofence import Engine, EvalConfig
from emon.geofence.events import EvalEvent

Key = tuple[str, str, str, str]  # type, rule, at, episode: one decision (as the record de-duplicates it)


@dataclass
class ReplayResult:
    """``missing``: on record but not reached again; ``extra``: reached but not on record; ``different``:
    (key, recorded, replayed) for a decision whose content differs."""

    replayed: list[dict[str, Any]]
    recorded: list[dict[str, Any]]
    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    different: list[tuple[Key, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.missing or self.extra or self.different)


def read_fixes(body: bytes) -> dict[tuple[str, str, int], Fix]:
    """The fixes of ``fixes.csv`` by (device, ts ISO, seq or -1)."""
    out: dict[tuple[str, str, int], Fix] = {}
    for row in csv.DictReader(io.StringIO(body.decode())):
        seq = int(row["seq"])
        fix = Fix(
            device_id=row["device_id"],
            ts=datetime.fromisoformat(row["ts"]),
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            acc_m=float(row["acc_m"]),
            seq=None if seq == -1 else seq,
            batt=_opt(row["batt"]),
            src=FixSource(row["src"]) if row["src"] else None,
            speed_mps=_opt(row["speed_mps"]),
            heading_deg=_opt(row["heading_deg"]),
        )
        out[(fix.device_id, fix.ts.isoformat(), seq)] = fix
    return out


def _opt(text: str) -> float | None:
    return float(text) if text else None


def _key(e: Mapping[str, Any]) -> Key:
    return (e["type"], e["rule"], e["at"], e["episode"])


def _json(event: EvalEvent) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(event.explain()))
    return loaded


def replay(files: Mapping[str, bytes]) -> ReplayResult:
    """Re-run the pack's journal from its starting state; compare with ``decisions.json``."""
    try:
        start = json.loads(files["start_state.json"])
        versions = {int(v["version"]): v for v in json.loads(files["order_versions.json"])}
        journal = json.loads(files["journal.json"])
        recorded = [d["explanation"] for d in json.loads(files["decisions.json"])]
        fixes = read_fixes(files["fixes.csv"])
    except KeyError as exc:
        raise EvidenceError(f"the pack has no {exc.args[0]}: it cannot be replayed") from exc
    if not start:
        raise EvidenceError(
            "the pack has no starting state (no snapshot before the incident): it cannot be replayed"
        )
    version: int | None = start["order_version"]
    case = _case(versions, version)
    engine = Engine(EvalConfig(**start["config"]))
    engine.add_case(case, start["state"])
    produced: list[dict[str, Any]] = []
    for step in journal:
        now = datetime.fromisoformat(step["now"])
        out: list[EvalEvent] = []
        if step["kind"] == "batch":
            batch = [fixes[(d, t, int(q))] for d, t, q in step["fixes"] if (d, t, int(q)) in fixes]
            out = engine.evaluate_batch(batch, now)
        elif step["kind"] == "tick":
            out = engine.tick(now)
        elif step["kind"] == "case":
            version = step["detail"].get("version")
            case = _case(versions, version)
            engine.add_case(case)
        elif step["kind"] == "start":
            state = engine.snapshot(case.case_id) if case.case_id in engine.case_ids() else None
            engine = Engine(EvalConfig(**step["detail"]["config"]))
            engine.add_case(case, state)
        produced += [_json(replace(e, detail={**e.detail, "order_version": version})) for e in out]
    return compare(recorded, produced)


def _case(versions: Mapping[int, Mapping[str, Any]], version: int | None) -> Case:
    if version is None or version not in versions:
        raise EvidenceError(f"order version {version} is not in the pack")
    return Case.model_validate(versions[version]["document"])


def compare(recorded: list[dict[str, Any]], produced: list[dict[str, Any]]) -> ReplayResult:
    """Match decisions by (type, rule, at, episode) — the record keeps the first of equal keys, so does
    this — and report what is missing, extra or different."""
    replayed: dict[Key, dict[str, Any]] = {}
    for e in produced:
        replayed.setdefault(_key(e), e)
    on_record = {_key(e): e for e in recorded}
    result = ReplayResult(list(replayed.values()), recorded)
    for key, e in on_record.items():
        if key not in replayed:
            result.missing.append(e)
        elif replayed[key] != e:
            result.different.append((key, e, replayed[key]))
    result.extra = [e for key, e in replayed.items() if key not in on_record]
    return result


def describe(result: ReplayResult) -> str:
    """A readable account of a replay: the count, or each difference."""
    if result.same:
        return f"replay reached the same {len(result.recorded)} decisions as on record"
    lines = [
        f"replay differs from the record ({len(result.recorded)} recorded, {len(result.replayed)} replayed):"
    ]
    lines += [f"  missing  {' '.join(_key(e))}" for e in result.missing]
    lines += [f"  extra    {' '.join(_key(e))}" for e in result.extra]
    for key, was, now in result.different:
        fields = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        lines.append(
            f"  differs  {' '.join(key)}: "
            + "; ".join(f"{f}: recorded {was.get(f)!r}, replayed {now.get(f)!r}" for f in fields)
        )
    return "\n".join(lines)
