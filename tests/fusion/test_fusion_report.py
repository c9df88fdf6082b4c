"""The report of a fused bundle: the failure-analysis section and the intermediate-fusion comparison, through
`lymphcast predict` and `lymphcast evaluate --model BUNDLE --intermediate-from TRAIN_DIR`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lymphcast.cli import app

from tests.fusion.conftest import TRAIN_CENTRES

# end to end through the CLI (a bundle saved, predicted, evaluated twice: ~2 minutes); the pieces are tested fast in
# test_failures.py and test_intermediate.py, and the fused report's failure section in test_fusion_model.py
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fused_bundle(small_fused, multimodal_cohort, tmp_path_factory):
    from lymphcast.bundle import Bundle, save_bundle
    from lymphcast.provenance import cohort_hashes, stamp

    manifest = stamp(modalities=list(small_fused.modalities), settings={"fusion": small_fused.get_params()}, seed=1,
                     training={"cohort": multimodal_cohort.meta.name, "centres": TRAIN_CENTRES,
                               "input_sha256": cohort_hashes(multimodal_cohort.root)},
                     thresholds={"youden": 0.35})
    folder = tmp_path_factory.mktemp("fused") / "model"
    save_bundle(Bundle({"fusion": small_fused}, manifest), folder)
    return folder


def test_report_holds_the_failures_and_the_comparison(fused_bundle, small_fused, small_intermediate,
                                                      multimodal_cohort, synth_multimodal_cohort_dir, tmp_path):
    from lymphcast.fusion.failures import lowest_risk_n1b
    from lymphcast.fusion.intermediate import comparison_section

    from tests.torch_threads import one_torch_thread

    runner = CliRunner()
    with one_torch_thread():
        result = runner.invoke(app, ["predict", str(fused_bundle), str(synth_multimodal_cohort_dir), "--out",
                                     str(tmp_path / "pred.csv"), "--centres", "D"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["evaluate", str(tmp_path / "pred.csv"), str(synth_multimodal_cohort_dir),
                                     "--out", str(tmp_path / "report"), "--model", str(fused_bundle),
                                     "--intermediate-from", str(synth_multimodal_cohort_dir)])
    assert result.exit_code == 0, result.output
    fusion = json.loads((tmp_path / "report" / "metrics.json").read_text())["fusion"]
    html = (tmp_path / "report" / "report.html").read_text()

    test = multimodal_cohort.in_centres(["D"])
    late = small_fused.predict_proba(test)
    worst = lowest_risk_n1b(late, test.labels(), 5)
    failures = fusion["failures"]
    assert failures["threshold"] == pytest.approx(0.35)  # the bundle's (Youden) threshold, as the report uses
    assert [r["patient_id"] for r in failures["rows"]] == [str(p) for p in worst.index]
    assert "Failure analysis: the worst false negatives" in html
    first = failures["rows"][0]
    assert f"Patient {first['patient_id']} (centre D)" in html and first["explanation"] in html
    assert "picture" in first and "most suspicious node of patient" in html

    # the comparison refitted from the training folder equals the one fitted here on the same stacking patients
    expected = comparison_section(late, small_intermediate.predict_proba(test), test.labels(),
                                  small_intermediate.training_summary_)
    rows = fusion["intermediate"]["rows"]
    assert [r["name"] for r in rows] == ["stacking (late fusion)", "intermediate fusion (comparison)"]
    for got, want in zip(rows, expected["rows"]):
        assert got["auc"] == pytest.approx(want["auc"], abs=1e-6)
        assert got["slope"] == pytest.approx(want["slope"], abs=1e-4)
    assert fusion["intermediate"]["p_value"] == pytest.approx(expected["p_value"], abs=1e-6)
    assert "Comparison: intermediate (feature-level) fusion" in html
    assert f"{rows[1]['auc']:.3f} ({rows[1]['auc_ci_low']:.3f} to {rows[1]['auc_ci_high']:.3f})" in html


def test_intermediate_from_needs_a_fused_bundle(synth_multimodal_cohort_dir, tmp_path):
    (tmp_path / "pred.csv").write_text("patient_id,probability\n")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred.csv"), str(synth_multimodal_cohort_dir),
                                      "--out", str(tmp_path / "report"), "--intermediate-from",
                                      str(synth_multimodal_cohort_dir)])
    assert result.exit_code != 0 and "--intermediate-from needs --model" in result.output


def test_without_a_training_cohort_the_report_says_so(small_fused, multimodal_cohort, tmp_path):
    from lymphcast.evaluate.report import write_report
    from lymphcast.fusion.evaluation import fusion_sections

    test = multimodal_cohort.in_centres(["D"])
    p = small_fused.predict_proba(test)
    frame = test.patients[["patient_id", "centre"]].assign(probability=p.to_numpy(),
                                                            label=test.labels().to_numpy())
    section = fusion_sections(small_fused, test, 0.35, n_failures=2)
    assert "intermediate" not in section and len(section["failures"]["rows"]) == 2
    write_report(frame, tmp_path / "report", title="t", provenance={}, threshold=0.35, fusion=section, n_boot=50)
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Failure analysis: the worst false negatives" in html
    assert "was not computed: it needs the fused" in html and "Comparison: intermediate" not in html
    assert html.count("most suspicious node of patient") == sum("picture" in r for r in section["failures"]["rows"])
