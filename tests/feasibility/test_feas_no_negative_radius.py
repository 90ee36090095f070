"""Nobody is shown a negative radius: the text says "no fixed circle is possible" instead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emon.feasibility import cli
from emon.feasibility.messages import figure

from .helpers import NOW

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "check-ban-inspection.json"


@pytest.mark.parametrize(
    ("name", "value", "lang", "text"),
    [
        ("max_radius_m", -199.93, "en", "no fixed circle is possible"),
        ("max_radius_m", -199.93, "nl", "geen vaste cirkel mogelijk"),
        ("radius_m", 0.0, "en", "no fixed circle is possible"),
        ("max_radius_m", 250.04, "nl", "250"),
        ("shortfall_m", 699.93, "nl", "699,9"),
        ("depth_m", -5.0, "en", "-5"),  # only radii are refused as negative numbers
    ],
)
def test_figure_text(name: str, value: float, lang: str, text: str) -> None:
    assert figure(name, value, lang) == text


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "no fixed circle is possible"), ("nl", "geen vaste cirkel mogelijk")]
)
def test_check_ban_text_never_prints_a_negative_radius(
    capsys: pytest.CaptureFixture[str], lang: str, words: str
) -> None:
    assert cli.main([str(EXAMPLE), "--lang", lang], clock=lambda: NOW) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"max_radius_m = {words}" in out
    assert not re.search(r"radius_m = -", out)


def test_readme_example_shows_no_negative_radius() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "max_radius_m = -" not in readme and "max_radius_m = no fixed circle is possible" in readme
