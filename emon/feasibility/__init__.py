"""The enforceability check (issue 4): can a proposed location/contact ban be enforced with an
ankle tag? Gives a verdict, findings with figures (metres) and enforceable alternatives.

    from emon.feasibility import FeasibilitySettings, check, parse_request
    report = check(parse_request(document), FeasibilitySettings(), now)

See docs/enforceability.md for each finding code and its threshold.
"""

from emon.feasibility.checker import Report, check
from emon.feasibility.findings import Code, Coverage, Finding, Message, Severity, Suggestion, SuggestionKind
from emon.feasibility.request import FeasibilityRequest, Place, parse_request
from emon.feasibility.settings import FeasibilitySettings

__all__ = [
    "Code",
    "Coverage",
    "FeasibilityRequest",
    "FeasibilitySettings",
    "Finding",
    "Message",
    "Place",
    "Report",
    "Severity",
    "Suggestion",
    "SuggestionKind",
    "check",
    "parse_request",
]
