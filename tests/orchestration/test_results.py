"""Results cache what they derive from their fields; a copy with other fields derives anew."""

from __future__ import annotations

from maestro_lite.requirements import RequirementResult
from maestro_lite.result import Citation, Claim, StepResult, ValidationReport


def _check(passed: bool, score: float) -> RequirementResult:
    return RequirementResult(
        id="r", description="d", kind="check", score=score, passed=passed, reason=""
    )


def test_a_report_copied_with_other_results_is_judged_on_them() -> None:
    report = ValidationReport(round=1, results=[_check(False, 0.0)])
    assert not report.passed and report.score == 0.0 and len(report.failed) == 1
    fixed = report.model_copy(update={"results": [_check(True, 1.0)]})
    assert fixed.passed and fixed.score == 1.0 and fixed.failed == []
    assert not report.passed  # the original keeps its own verdict
    assert report.model_copy().passed is False  # a plain copy: same fields, same verdict


def test_a_step_result_copied_with_other_claims_cites_their_sources() -> None:
    cite = Citation(
        evidence_id="c1.s1",
        chunk_id="d:0",
        document_id="d",
        title="Doc",
        path="d.txt",
        page=1,
        start=0,
        end=4,
        quote="text",
    )
    result = StepResult(step_id="s", kind="answer", status="done", round=1)
    assert result.citations == []
    cited = result.model_copy(update={"claims": [Claim(text="t", citations=[cite])]})
    assert cited.citations == [cite]
