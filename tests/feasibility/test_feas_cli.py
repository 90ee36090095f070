"""``emon check-ban``: exit 0/1/2, readable or JSON output, one-line errors without a traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from emon.feasibility import cli

from .helpers import CITIES, NOW, at, circle, request

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "check-ban-inspection.json"


def main(argv: list[str]) -> int:
    """The CLI at a fixed "now", so the example's end date never turns into a finding."""
    return cli.main(argv, clock=lambda: NOW)


def _write(tmp_path: Path, document: object, name: str = "order.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_inspection_example_in_dutch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE)]) == 1
    out = " ".join(capsys.readouterr().out.split())  # the text is wrapped at 100 columns
    assert out.startswith("Oordeel: NIET HANDHAAFBAAR")
    assert "[blokkerend] RESIDENCE_TOO_CLOSE — zone 'Woning slachtoffer'" in out
    assert "hemelsbreed 300 m" in out and "minstens 1.000 m nodig" in out
    assert "distance_m = 300,1" in out and "required_m = 1.000" in out
    assert "dynamic_monitoring" in out and "contactverbod van 500 m" in out


def test_inspection_example_in_english(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE), "--lang", "en"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("Verdict: NOT ENFORCEABLE")
    assert "300 m in a straight line" in out and "No fixed circle" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["enforceable"] is False
    assert [f["code"] for f in report["findings"]] == ["RESIDENCE_TOO_CLOSE"]
    assert report["findings"][0]["figures"]["distance_m"] == pytest.approx(300, abs=1)
    assert report["suggestions"][0]["kind"] == "dynamic_monitoring"
    assert report["geojson"]["type"] == "FeatureCollection"


def test_enforceable_order_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    victim = CITIES["sevilla_es"]
    path = _write(
        tmp_path, request(at(victim, 90, 3000), [circle("casa", victim, 500)], protected=[("casa", victim)])
    )
    assert main([path, "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Verdict: ENFORCEABLE") and "Findings: none" in out


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(EXAMPLE.read_text(encoding="utf-8")))
    assert main(["-", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["enforceable"] is False


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            "{not json",
            "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (json.dumps({"order": {}}), "invalid input in field 'residence': Field required"),
        (
            json.dumps({"residence": {"rd": {"x": 1e6, "y": 4e5}}, "order": {}}),
            "invalid input in field 'residence.rd.x': Input should be less than or equal to 300000",
        ),
        (
            json.dumps(
                {
                    "residence": {"lat": 52, "lon": 5},
                    "order": {
                        "exclusion_zones": [
                            {
                                "name": "x",
                                "geometry": {
                                    "type": "Polygon",
                                    "coordinates": [[[5, 52], [5.1, 52.1], [5.1, 52], [5, 52.1], [5, 52]]],
                                },
                            }
                        ]
                    },
                }
            ),
            "invalid input in field 'order.exclusion_zones.0.geometry': invalid polygon (e.g. self-intersecting)",
        ),
    ],
)
def test_invalid_input_exits_two_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: str
) -> None:
    path = tmp_path / "order.json"
    path.write_text(content, encoding="utf-8")
    assert main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("emon check-ban: error: ") and words in captured.err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["/nonexistent/order.json"], "cannot read /nonexistent/order.json: No such file or directory"),
        ([], "the following arguments are required: ORDER.json"),
        (["x.json", "--lang", "de"], "invalid choice: 'de'"),
    ],
)
def test_bad_invocation_exits_two(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "order.json"
    path.write_bytes(b"\xff\xfe{")
    assert main([str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_bad_setting_exits_two(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EMON_FEAS_GUIDELINE_M", "far")
    assert main([str(EXAMPLE)]) == 2
    assert "bad setting EMON_FEAS_GUIDELINE_M: expected a number, got 'far'" in capsys.readouterr().err


def test_setting_from_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMON_FEAS_GUIDELINE_M", "250")
    assert main([str(EXAMPLE), "--lang", "en"]) == 0
    assert capsys.readouterr().out.startswith("Verdict: ENFORCEABLE")


def test_help_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "usage: emon check-ban" in capsys.readouterr().out
