"""What the pipelines' reports say about a run's checks."""

from __future__ import annotations

from maestro_lite import RequirementResult
from pipelines._render import status_detail


def _result(id: str, kind: str, passed: bool) -> RequirementResult:
    return RequirementResult(
        id=id, description=id, kind=kind, score=float(passed), passed=passed, reason=""
    )


def test_a_report_status_names_the_built_in_checks_that_failed() -> None:
    met = [_result("r1", "judge", True), _result("answer.citations", "builtin", True)]
    assert status_detail(met) == "1 of 1 requirements met"
    unmet = [*met, _result("answer.figures", "builtin", False)]
    assert status_detail(unmet) == (
        "1 of 1 requirements met; built-in checks failed: answer.figures"
    )
