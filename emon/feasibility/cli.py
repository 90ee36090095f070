"""``emon check-ban ORDER.json [--json] [--lang nl|en]``: judge a proposed order from the shell.

Exit status: 0 enforceable, 1 not enforceable, 2 invalid input (one line on stderr naming the
field; also for an unreadable file, invalid JSON or a bad ``EMON_FEAS_*`` variable).
``ORDER.json`` may be ``-`` to read standard input. Thresholds come from ``EMON_FEAS_*``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NoReturn

from emon.errors import ConfigError, InvalidOrder
from emon.feasibility.checker import Report, check
from emon.feasibility.findings import Severity
from emon.feasibility.messages import figure
from emon.feasibility.request import parse_request
from emon.feasibility.settings import FeasibilitySettings

EXIT_ENFORCEABLE, EXIT_NOT_ENFORCEABLE, EXIT_INVALID = 0, 1, 2

_LABELS: Mapping[str, Mapping[str, str]] = {
    "nl": {
        "yes": "HANDHAAFBAAR",
        "no": "NIET HANDHAAFBAAR",
        "verdict": "Oordeel",
        "findings": "Bevindingen",
        "suggestions": "Alternatieven",
        "none": "geen",
        "zone": "zone",
        "place": "plaats",
        Severity.BLOCKING: "blokkerend",
        Severity.WARNING: "waarschuwing",
        Severity.INFO: "info",
        "workable": "haalbaar",
        "not_workable": "niet voldoende",
    },
    "en": {
        "yes": "ENFORCEABLE",
        "no": "NOT ENFORCEABLE",
        "verdict": "Verdict",
        "findings": "Findings",
        "suggestions": "Alternatives",
        "none": "none",
        "zone": "zone",
        "place": "place",
        Severity.BLOCKING: "blocking",
        Severity.WARNING: "warning",
        Severity.INFO: "info",
        "workable": "workable",
        "not_workable": "falls short",
    },
}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def main(argv: Sequence[str], *, clock: Callable[[], datetime] = _utc_now) -> int:
    """Run ``emon check-ban`` with ``argv`` (the arguments after the subcommand); return the exit status.

    ``clock`` gives "now" (UTC), used only to judge the order's end date.
    """
    parser = _Parser(prog="emon check-ban", description="Check whether a proposed ban can be enforced.")
    parser.add_argument("order", metavar="ORDER.json", help="the request document, or - for stdin")
    parser.add_argument("--json", action="store_true", help="print the machine-readable report")
    parser.add_argument("--lang", choices=("nl", "en"), default="nl", help="language of the report")
    try:
        args = parser.parse_args(list(argv))
    except _UsageError as exc:
        return _fail(f"{exc} (usage: {parser.format_usage().strip().removeprefix('usage: ')})")
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    source = "standard input" if args.order == "-" else args.order
    try:
        settings = FeasibilitySettings.from_env()
        text = sys.stdin.read() if args.order == "-" else _read(args.order)
        document = json.loads(text)
        request = parse_request(document)
    except ConfigError as exc:
        return _fail(f"bad setting {exc.variable}: {exc.problem}")
    except OSError as exc:
        return _fail(f"cannot read {source}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        return _fail(f"cannot read {source}: not UTF-8 text")
    except json.JSONDecodeError as exc:
        return _fail(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except InvalidOrder as exc:
        return _fail(f"invalid input in field '{exc.field}': {exc.problem}")
    report = check(request, settings, clock())
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render(report, args.lang))
    return EXIT_ENFORCEABLE if report.enforceable else EXIT_NOT_ENFORCEABLE


def render(report: Report, lang: str) -> str:
    """The report as readable text in ``lang`` ("nl" or "en"): verdict, findings, alternatives."""
    label = _LABELS[lang]
    lines = [f"{label['verdict']}: {label['yes'] if report.enforceable else label['no']}", ""]
    lines.append(f"{label['findings']}:" if report.findings else f"{label['findings']}: {label['none']}")
    for i, f in enumerate(report.findings, 1):
        about = [
            f"{label['zone']} '{f.zone}'" if f.zone else "",
            f"{label['place']} '{f.place}'" if f.place else "",
        ]
        head = f"  {i}. [{label[f.severity]}] {f.code.value}"
        lines.append(" — ".join([head, *(a for a in about if a)]))
        lines += _indented(f.message.in_lang(lang), _figures(f.figures, lang))
    if report.suggestions:
        lines += ["", f"{label['suggestions']}:"]
    for i, s in enumerate(report.suggestions, 1):
        state = label["workable"] if s.workable else label["not_workable"]
        lines.append(f"  {i}. {s.kind.value} — {label['zone']} '{s.zone}' ({state})")
        lines += _indented(s.message.in_lang(lang), _figures(s.figures, lang))
    return "\n".join(lines)


def _indented(*paragraphs: str) -> list[str]:
    return [
        textwrap.fill(p, width=100, initial_indent=" " * 5, subsequent_indent=" " * 5)
        for p in paragraphs
        if p
    ]


def _figures(figures: Mapping[str, float], lang: str) -> str:
    return ", ".join(f"{k} = {figure(k, v, lang)}" for k, v in figures.items())


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _fail(message: str) -> int:
    one_line = " ".join(message.split())
    print(f"emon check-ban: error: {one_line}", file=sys.stderr)
    return EXIT_INVALID
