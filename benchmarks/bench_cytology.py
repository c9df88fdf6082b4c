"""The cytology model: external AUC against the exact cytology risk, and what a lab with another stain loses.

    .venv/bin/python benchmarks/bench_cytology.py [COHORT_FOLDER] [--patients N] [--seed S] [--epochs N]
                                                  [--no-stain-norm-arm] [--no-stain-swap]

Trained on the Papanicolaou centres (all but the Diff-Quik one), less a stratified quarter of their patients kept
back as the internal test; scored on that internal test and on the Diff-Quik centre (external, other stain).
Where the model has its measurement reader, each reader's own AUC is printed beside the combined one.
Without a folder, a synthetic cohort (`--patients`, 4 centres, clinical + cytology) is generated in a temporary
folder first. Printed per test set: patients and events, AUC with its DeLong 95% CI, the AUC of the exact
cytology risk `risk_cytology` on the same patients (the ceiling: it knows the aggressive features exactly) and the
ratio; the internal − external gap, raw and oracle-adjusted (the two sets differ in case mix, which moves the
ceiling too). Unless --no-stain-norm-arm, the same model trained without stain normalisation is scored as well,
with a paired DeLong test on the external centre. Then tiling and scoring time per patient. Unless
--no-stain-swap, the external centre's cytology is rendered again in Pap (lymphcast.synth.stain_swap: same
patients, same cells, only the stain differs) into a temporary folder and every trained model is scored on both
renderings: its AUC in the centre's stain and in Pap with the paired DeLong test, i.e. what the other stain costs
free of case mix (target <= 0.03).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from cohort_args import parser, run_on_cohort
from lymphcast.cohort import LymphCastError, read_cohort
from lymphcast.evaluate.discrimination import auc_ci, auc_score, delong_test
from lymphcast.modalities.cytology import CytologyModel
from lymphcast.synth.stain_swap import restain_cohort


def main() -> None:
    ap = parser(__doc__, seed=11, epochs_help="epochs of the contrastive stage (default: the model's)")
    ap.add_argument("--no-stain-norm-arm", action="store_true", help="skip the model without stain normalisation")
    ap.add_argument("--no-stain-swap", action="store_true", help="skip re-rendering the external centre in Pap")
    run_on_cohort(ap.parse_args(), ["clinical", "cytology"], run)


def stains(cohort) -> dict[str, str]:
    """Centre → stain, from cytology.csv (what the images are) or else the centre profiles."""
    table = cohort.cytology
    if "stain" in table.columns and len(table):
        by_patient = cohort.patients.set_index("patient_id")["centre"]
        return table.assign(centre=by_patient.reindex(table["patient_id"]).to_numpy()).groupby("centre")["stain"] \
            .agg(lambda s: s.mode().iat[0]).to_dict()
    return {c.id: (c.acquisition or {}).get("cytology", {}).get("stain", "Pap") for c in cohort.meta.centres}


def _scores(name: str, p: pd.Series, labels: pd.Series, oracle: pd.Series) -> dict:
    y, s, o = labels.to_numpy(int), p.loc[labels.index].to_numpy(float), oracle.loc[labels.index].to_numpy(float)
    auc, low, high = auc_ci(y, s)
    ceiling = auc_score(y, o)
    print(f"  {name:<26} n={len(y):4d} events={int(y.sum()):3d}  AUC {auc:.3f} ({low:.3f}-{high:.3f})  "
          f"risk_cytology {ceiling:.3f}  ratio {auc / ceiling:.3f}")
    return {"auc": auc, "oracle": ceiling}


def readers(model, part) -> None:
    """Each reader's own AUC on `part` (network bag logits; measurement reader's log-odds), where both exist."""
    if getattr(model, "reader_", None) is None:
        return
    bags, scores, _ = model.patient_scores(part)
    y = part.labels().astype(int).reindex(bags.patient_ids)
    known = y.notna().to_numpy()
    network, measured = (auc_score(y[known].astype(int), scores[known, j]) for j in (0, 1))
    weights = ", ".join(f"{k} {w:+.2f}" for k, w in model.training_summary_["score_weights"].items())
    print(f"    network alone AUC {network:.3f}, measurement reader alone {measured:.3f} (stack weights: {weights})")


def run(folder: Path, args) -> None:
    cohort = read_cohort(folder)
    risks = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    by_stain = stains(cohort)
    other = sorted(c for c, s in by_stain.items() if s != "Pap")
    if not other:
        raise SystemExit("no centre with a stain other than Pap in this cohort")
    external = other[0]
    pap = sorted(c for c in by_stain if c != external)
    data = cohort.in_centres(pap).labelled()
    ids, y = data.patients["patient_id"].to_numpy(), data.patients["n1b"].astype(int).to_numpy()
    train_ids, internal_ids = train_test_split(ids, test_size=0.25, random_state=0, stratify=y)
    train, internal = data.subset(train_ids), data.subset(internal_ids)
    ext = cohort.in_centres([external]).labelled()
    print(f"cohort {folder.name}: train on {', '.join(pap)} ({len(train_ids)} patients, Pap), internal test "
          f"{len(internal_ids)} patients, external centre {external} ({by_stain[external]})")
    options = {"epochs": args.epochs} if args.epochs else {}
    arms = [("stain-normalised", True)] + ([] if args.no_stain_norm_arm else [("no stain normalisation", False)])
    external_p, models = {}, {}
    for name, norm in arms:
        model = models[name] = CytologyModel(seed=0, stain_norm=norm, **options)
        t0 = time.perf_counter()
        model.fit(train)
        print(f"{name}: trained in {time.perf_counter() - t0:.0f} s (best epoch {model.best_epoch_}; "
              f"{model.training_summary_['median_tiles_per_patient']:.0f} tiles per patient)")
        scored = {}
        for label, part in (("internal (Pap)", internal), (f"external {external} ({by_stain[external]})", ext)):
            t0 = time.perf_counter()
            p = model.predict_proba(part)
            per_patient = (time.perf_counter() - t0) / max(len(part.patients), 1)
            scored[label] = _scores(label, p, part.labels().astype(int), risks["risk_cytology"])
            print(f"    tiling + scoring: {per_patient * 1000:.0f} ms per patient")
            readers(model, part)
            if label.startswith("external"):
                external_p[name] = p
        (i, e) = scored.values()
        print(f"  internal - external AUC: {i['auc'] - e['auc']:+.3f} (target <= 0.03); the ceiling moves by "
              f"{i['oracle'] - e['oracle']:+.3f}, so the gap beyond case mix is "
              f"{(i['auc'] - e['auc']) - (i['oracle'] - e['oracle']):+.3f}")
    if len(external_p) == 2:
        labels = ext.labels().astype(int)
        a, b = (external_p[n].loc[labels.index].to_numpy(float) for n, _ in arms)
        test = delong_test(labels.to_numpy(int), a, b)
        print(f"external centre, normalised - not normalised: AUC {test.difference:+.3f} "
              f"({test.difference_ci_low:+.3f} to {test.difference_ci_high:+.3f}; paired DeLong p = {test.p_value:.3f})")
    if not args.no_stain_swap:
        stain_swap(folder, external, by_stain[external], ext, models, external_p)


def stain_swap(folder: Path, external: str, stain: str, ext, models: dict, external_p: dict) -> None:
    """Each model on the external centre's patients as they are and re-rendered in Pap: the same patients and
    labels, so the paired difference is what the stain costs, whatever the centre's case mix."""
    labels = ext.labels().astype(int)
    y = labels.to_numpy(int)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        try:
            swapped = restain_cohort(folder, Path(tmp) / "restained", centres=(external,), stain="Pap")
        except LymphCastError as e:  # a cohort the generator did not make (or cannot redraw) has no stain swap
            print(f"stain swap skipped: {e}")
            return
        print(f"stain swap: centre {external} re-rendered in Pap in {time.perf_counter() - t0:.0f} s "
              f"(same patients, cells and draws; only the stain differs)")
        pap = read_cohort(swapped).in_centres([external]).labelled()
        for name, model in models.items():
            own = external_p[name].loc[labels.index].to_numpy(float)
            other = model.predict_proba(pap).loc[labels.index].to_numpy(float)
            (a_own, lo_own, hi_own), (a_pap, lo_pap, hi_pap) = auc_ci(y, own), auc_ci(y, other)
            test = delong_test(y, other, own)
            print(f"  {name}: centre {external} in {stain} AUC {a_own:.3f} ({lo_own:.3f}-{hi_own:.3f}), in Pap "
                  f"{a_pap:.3f} ({lo_pap:.3f}-{hi_pap:.3f}), n={len(y)} events={int(y.sum())}")
            print(f"    what {stain} costs (Pap - {stain}): AUC {test.difference:+.3f} ({test.difference_ci_low:+.3f} "
                  f"to {test.difference_ci_high:+.3f}; paired DeLong p = {test.p_value:.3f}; target <= 0.03)")


if __name__ == "__main__":
    main()
