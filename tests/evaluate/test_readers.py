"""Reader-study statistics on planted calls whose answers are counted by hand."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from lymphcast.cohort import LymphCastError
from lymphcast.evaluate import threshold_for_sensitivity, wilson_ci
from lymphcast.evaluate.readers import (ReaderStudyError, aided_vs_unaided, matched_threshold, read_reader_calls,
                                        reader_figure, reader_metrics, versus_model)

POS = [f"P{i:02d}" for i in range(1, 11)]   # P01..P10: N1b
NEG = [f"P{i:02d}" for i in range(11, 21)]  # P11..P20: not


def binom_p(b: int, c: int) -> float:
    return binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0


def calls_frame(reads: dict) -> pd.DataFrame:
    """{(reader, aided): set of patients called suspicious} over every labelled case, plus P21/P22."""
    rows = [(reader, pid, int(pid in positive), aided)
            for (reader, aided), positive in reads.items() for pid in POS + NEG + ["P21", "P22"]]
    return pd.DataFrame(rows, columns=["reader", "patient_id", "call", "aided"])


@pytest.fixture
def study():
    labels = pd.Series({**{p: 1 for p in POS}, **{p: 0 for p in NEG}, "P21": np.nan})  # P22: not listed
    reads = {
        ("R1", 0): set(POS[:8]) | {"P11", "P12", "P13"},  # sensitivity 8/10, specificity 7/10
        ("R1", 1): set(POS) | {"P11"},                    # 10/10, 9/10
        ("R2", 0): set(POS[:5]) | set(NEG[:6]),           # 5/10, 4/10
        ("R2", 1): set(POS) | {"P11"},                    # 10/10, 9/10
        ("R3", 0): set(POS[:8]),                          # unaided only
    }
    # Model: P03..P10 high, P01/P02 low, one confident false positive (P11), the other negatives low.
    prob = dict(zip(POS[2:], [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55]))
    prob.update({"P01": 0.3, "P02": 0.25, "P11": 0.72, "P21": 0.5, "P22": 0.5})
    prob.update(dict(zip(NEG[1:], np.linspace(0.2, 0.01, 9))))
    return calls_frame(reads), labels, pd.Series(prob)


def by_key(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


def test_reader_metrics_counts_by_hand(study):
    calls, labels, _ = study
    rows = by_key(reader_metrics(calls, labels), "reader", "aided")
    r1 = rows["R1", False]
    assert (r1["n_cases"], r1["n_unlabelled"], r1["n_positive"], r1["n_negative"]) == (20, 2, 10, 10)
    assert (r1["tp"], r1["fn"], r1["tn"], r1["fp"]) == (8, 2, 7, 3)
    assert (r1["sensitivity"], r1["sensitivity_ci_low"], r1["sensitivity_ci_high"]) == wilson_ci(8, 10)
    assert (r1["specificity"], r1["specificity_ci_low"], r1["specificity_ci_high"]) == wilson_ci(7, 10)
    assert rows["R2", True]["sensitivity"] == 1.0 and rows["R2", True]["specificity"] == 0.9
    assert set(rows) == {("R1", False), ("R1", True), ("R2", False), ("R2", True), ("R3", False)}
    assert r1["level"] == "patient"


def test_versus_model_matches_sensitivity_and_counts_discordant_pairs(study):
    calls, labels, prob = study
    row = by_key(versus_model(calls, labels, prob), "reader", "aided")["R1", False]
    # Reader finds 8 positives; the model's 8th-highest positive score is 0.55.
    assert row["threshold"] == 0.55 and row["model_sensitivity"] == 0.8 and row["reader_sensitivity"] == 0.8
    assert (row["n_cases"], row["n_excluded"]) == (20, 2)
    # Positives: reader right on P01..P08, model on P03..P10 -> b = 2 (P01, P02), c = 2 (P09, P10).
    assert (row["sensitivity_b"], row["sensitivity_c"]) == (2, 2)
    assert row["sensitivity_pvalue"] == pytest.approx(binom_p(2, 2))
    # Negatives: reader wrong on P11..P13, model only on P11 -> b = 0, c = 2.
    assert (row["specificity_b"], row["specificity_c"]) == (0, 2)
    assert row["specificity_pvalue"] == pytest.approx(binom_p(0, 2))
    assert (row["model_specificity"], row["model_specificity_ci_low"]) == wilson_ci(9, 10)[:2]
    assert row["reader_specificity"] == 0.7


def test_versus_model_aided_read_needs_every_positive(study):
    calls, labels, prob = study
    row = by_key(versus_model(calls, labels, prob), "reader", "aided")["R1", True]
    assert row["threshold"] == 0.25 and row["model_sensitivity"] == 1.0
    assert row["model_specificity"] == 0.9 and row["specificity_b"] == row["specificity_c"] == 0


def test_cases_without_model_probability_are_excluded_and_counted(study):
    calls, labels, prob = study
    row = versus_model(calls, labels, prob.drop(["P05", "P22"]))[0]
    assert (row["n_cases"], row["n_excluded"], row["n_positive"]) == (19, 3, 9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matched_threshold_really_matches_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.3, 200)
    p = np.round(np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1), 1)  # heavy ties
    reader = np.where(y == 1, rng.random(200) < 0.7, rng.random(200) < 0.2).astype(int)
    ids = [f"C{i}" for i in range(200)]
    calls = pd.DataFrame({"reader": "R", "patient_id": ids, "call": reader})
    row = versus_model(calls, pd.Series(y, ids), pd.Series(p, ids))[0]
    t, target = row["threshold"], row["reader_sensitivity"]
    sens = lambda thr: np.mean(p[y == 1] >= thr)  # noqa: E731
    assert sens(t) >= target and row["model_sensitivity"] == sens(t)
    higher = np.unique(p)[np.unique(p) > t]
    assert higher.size == 0 or sens(higher.min()) < target  # the next grid threshold falls short
    assert t == threshold_for_sensitivity(y, p, target)  # same rule as the project's threshold search
    model = p >= t
    neg = y == 0
    b = int(np.sum((reader[neg] == 0) & model[neg]))
    c = int(np.sum((reader[neg] == 1) & ~model[neg]))
    assert (row["specificity_b"], row["specificity_c"]) == (b, c)
    assert row["specificity_pvalue"] == pytest.approx(binom_p(b, c))


def test_matched_threshold_for_a_reader_who_calls_nothing():
    assert matched_threshold([0, 1, 1], [0.2, 0.4, 0.9], 0) > 0.9  # above every score: all negative


def test_aided_vs_unaided_planted_improvement(study):
    calls, labels, _ = study
    rows = by_key(aided_vs_unaided(calls, labels), "reader")
    assert set(rows) == {("R1",), ("R2",)}  # R3 read unaided only
    r2 = rows["R2",]
    assert (r2["n_cases"], r2["n_unpaired"], r2["n_unlabelled"]) == (20, 0, 2)
    assert (r2["sensitivity_unaided"], r2["sensitivity_aided"]) == (0.5, 1.0)
    assert r2["sensitivity_change"] == pytest.approx(0.5) and r2["specificity_change"] == pytest.approx(0.5)
    # 5 positives gained (P06..P10), none lost; 5 negatives gained (P12..P16), none lost.
    assert (r2["sensitivity_b"], r2["sensitivity_c"], r2["specificity_b"], r2["specificity_c"]) == (0, 5, 0, 5)
    assert r2["sensitivity_pvalue"] == pytest.approx(binom_p(0, 5)) == pytest.approx(0.0625)
    assert rows["R1",]["sensitivity_c"] == 2 and rows["R1",]["specificity_pvalue"] == pytest.approx(0.5)


def test_aided_vs_unaided_pairs_only_cases_read_both_ways(study):
    calls, labels, _ = study
    calls = calls[~((calls.reader == "R2") & (calls.aided == 1) & calls.patient_id.isin(["P01", "P12"]))]
    r2 = by_key(aided_vs_unaided(calls, labels), "reader")["R2",]
    assert (r2["n_cases"], r2["n_unpaired"], r2["n_positive"], r2["n_negative"]) == (18, 2, 9, 9)


def side_study():
    index = pd.MultiIndex.from_tuples([(p, s) for p in ("A", "B", "C", "D") for s in ("left", "right")],
                                      names=["patient_id", "side"])
    labels = pd.Series([1, 0, 0, 1, 0, 0, 1, 1], index)  # 4 positive sides
    calls = pd.DataFrame({"reader": "R", "patient_id": index.get_level_values(0),
                          "side": ["Left", "right", "left", "right", "left", "right", "left", "right"],
                          "call": [1, 1, 0, 1, 0, 0, 0, 1]})
    return calls, labels


def test_side_level_calls_against_side_level_labels():
    calls, labels = side_study()
    row = reader_metrics(calls, labels)[0]
    assert row["level"] == "side"
    assert (row["tp"], row["fn"], row["tn"], row["fp"]) == (3, 1, 3, 1)
    prob = pd.Series([0.9, 0.1, 0.2, 0.8, 0.3, 0.4, 0.7, 0.6], labels.index)
    vs = versus_model(calls, labels, prob)[0]
    assert vs["threshold"] == 0.7 and vs["model_specificity"] == 1.0  # 3rd-highest positive side score


def test_level_mismatch_is_explained():
    calls, side_labels = side_study()
    patient_labels = side_labels.groupby(level=0).max()
    with pytest.raises(ReaderStudyError, match="side-level: the reader calls have a side column"):
        reader_metrics(calls, patient_labels)
    with pytest.raises(ReaderStudyError, match="labels are side-level.*must be patient-level"):
        reader_metrics(calls.drop(columns="side").drop_duplicates("patient_id"), side_labels)
    with pytest.raises(ReaderStudyError, match="'side' must hold left or right"):
        reader_metrics(calls.assign(side="middle"), side_labels)


def test_ids_that_match_nothing_are_explained():
    calls = pd.DataFrame({"reader": "R", "patient_id": ["1", "2"], "call": [1, 0]})
    with pytest.raises(ReaderStudyError, match="check the patient ids"):
        reader_metrics(calls, pd.Series([1, 0], ["P1", "P2"]))
    assert reader_metrics(calls, pd.Series([1, 0], [1, 2]))[0]["tp"] == 1  # ints match their text


def write(tmp_path, text: str):
    path = tmp_path / "reads.csv"
    path.write_text(text)
    return path


def test_read_reader_calls(tmp_path):
    path = write(tmp_path, "reader,patient_id,side,call,aided,note\nR1,P1,Left,1,,\nR1,P1,left,yes,1,x\n"
                           "\nR1,P1,right,0,0,\n")
    calls = read_reader_calls(path)
    assert list(calls.columns) == ["reader", "patient_id", "side", "call", "aided"]
    assert calls.values.tolist() == [["R1", "P1", "left", 1, 0], ["R1", "P1", "left", 1, 1],
                                     ["R1", "P1", "right", 0, 0]]
    plain = read_reader_calls(write(tmp_path, "reader,patient_id,call\nR1,7,1\n"))
    assert list(plain.columns) == ["reader", "patient_id", "call", "aided"] and plain.aided.tolist() == [0]


@pytest.mark.parametrize("text, line, column, fragment", [
    ("reader,patient_id,aided\nR1,P1,0\n", 1, "call", "missing required column 'call'"),
    ("reader,patient_id,call\nR1,P1,1\nR1,P2,2\n", 3, "call", "expected 1 (suspicious) or 0"),
    ("reader,patient_id,side,call\nR1,P1,middle,1\n", 2, "side", "expected one of left, right"),
    ("reader,patient_id,side,call\nR1,P1,,1\n", 2, "side", "expected one of left, right"),
    ("reader,patient_id,call,aided\nR1,P1,1,0\nR1,P1,0,\n", 3, "patient_id", "already called patient P1 "
                                                                             "(unaided) on line 2"),
    ("reader,patient_id,call,aided\nR1,P1,1,maybe\n", 2, "aided", "expected 1 (read with the model"),
    ("reader,patient_id,call\n,P1,1\n", 2, "reader", "reader is empty"),
    ("reader,patient_id,call\nR1,,1\n", 2, "patient_id", "patient_id is empty"),
])
def test_csv_errors_name_line_and_column(tmp_path, text, line, column, fragment):
    path = write(tmp_path, text)
    with pytest.raises(LymphCastError) as caught:
        read_reader_calls(path)
    assert f"{path}, line {line}, column '{column}'" in str(caught.value)
    assert fragment in str(caught.value)
    assert [(p.line, p.column) for p in caught.value.problems] == [(line, column)]


def test_all_csv_problems_are_reported_at_once(tmp_path):
    path = write(tmp_path, "reader,patient_id,side,call\nR1,P1,up,1\nR1,P2,left,x\nR1,P3,left\n")
    with pytest.raises(ReaderStudyError) as caught:
        read_reader_calls(path)
    assert [(p.line, p.column) for p in caught.value.problems] == [(4, None), (2, "side"), (3, "call")]


def test_reader_figure(study):
    calls, labels, prob = study
    metrics = reader_metrics(calls, labels)
    y = labels.dropna()
    from lymphcast.evaluate import roc_curve
    fig = reader_figure(metrics, model_roc=roc_curve(y.to_numpy(int), prob[y.index].to_numpy()))
    ax = fig.axes[0]
    assert len(ax.texts) == 2  # one unaided -> aided arrow each for R1 and R2
    labels_shown = ax.get_legend_handles_labels()[1]
    assert {"model", "R1", "R2", "R3", "unaided", "aided"} <= set(labels_shown)
    fig.savefig(io.BytesIO(), format="png")
    assert len(reader_figure(reader_metrics(calls[calls.aided == 0], labels)).axes[0].texts) == 0
