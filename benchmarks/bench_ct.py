"""The CT model on a held-out centre: its AUC against the exact CT risk, dual- against single-energy input, and
inference time per node.

    .venv/bin/python benchmarks/bench_ct.py [COHORT_FOLDER] [--patients N] [--seed S] [--threads T] [--epochs N]

Trained on every centre but the last dual-energy one, scored on that one (so the held-out patients have iodine
maps). Without a folder, a synthetic cohort (`--patients`, 4 centres, clinical + CT) is generated in a
temporary folder first. Printed: patient-level AUC (DeLong 95% CI) of the dual-energy model (CtModel,
energy="dual") and of the same model trained and scored without iodine maps (energy="single"), both as a
ratio of the AUC of the exact CT risk `risk_ct` on the same patients (the ceiling: it knows every CT-visible
feature exactly), node AUC against the true node status, and a paired DeLong test dual vs single; the same for
the dual-energy CNN without the measurement reader (what the reader adds). Then the time to score one node on
`--threads` cores: the network alone (batched and one node at a time), the measurements, and the whole
predict_nodes path, reading the studies from disk included, per node.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cohort_args import parser, run_on_cohort
from lymphcast.cohort import read_cohort
from lymphcast.evaluate.discrimination import auc_ci, auc_score, delong_test
from lymphcast.modalities.ct import CtModel


def main() -> None:
    args = parser(__doc__, seed=7).parse_args()
    run_on_cohort(args, ["clinical", "ct"], run)


def held_out_centre(cohort, centres: list[str]) -> str:
    """The last centre whose CT is dual-energy (its acquisition profile in cohort.yaml), else the last centre."""
    dual = [c.id for c in cohort.meta.centres if (c.acquisition or {}).get("ct", {}).get("dual_energy")]
    dual = [c for c in dual if c in centres]
    return sorted(dual)[-1] if dual else centres[-1]


def _fit(name: str, model: CtModel, train) -> CtModel:
    t0 = time.perf_counter()
    model.fit(train)
    print(f"{name}: trained in {time.perf_counter() - t0:.0f} s (best epoch {model.best_epoch_})")
    return model


def timing(model: CtModel, test, threads: int) -> None:
    import torch

    from lymphcast.nets.ct_net import prepare

    t0 = time.perf_counter()
    crops = model.crops(test)
    read_s = time.perf_counter() - t0
    net = model.network()
    x = prepare(torch.from_numpy(crops.volumes[:64].astype(np.float32)), torch.from_numpy(crops.present[:64]))
    m = torch.from_numpy(crops.present[:64])
    with torch.no_grad():
        net(x, m)  # warm-up
        t0 = time.perf_counter()
        net(x, m)
        batched = (time.perf_counter() - t0) / len(x)
        single = []
        for i in range(len(x)):
            t0 = time.perf_counter()
            net(x[i:i + 1], m[i:i + 1])
            single.append(time.perf_counter() - t0)
    from lymphcast.modalities.ct_measure import measure_crops

    t0 = time.perf_counter()
    measure_crops(crops.volumes, crops.present, model.spacing_mm)
    measured = (time.perf_counter() - t0) / len(crops)
    t0 = time.perf_counter()
    model.predict_nodes(test)
    whole = (time.perf_counter() - t0) / len(crops)
    print(f"\ninference on {threads} thread(s), {len(crops)} nodes of {test.patients.shape[0]} patients: network "
          f"{1000 * batched:.1f} ms/node batched, {1000 * np.median(single):.1f} ms median / "
          f"{1000 * np.percentile(single, 95):.1f} ms p95 one node at a time; reading studies and cropping "
          f"{1000 * read_s / len(crops):.1f} ms/node; measurements {1000 * measured:.1f} ms/node; "
          f"whole predict_nodes {1000 * whole:.1f} ms/node")


def cluster_difference_ci(y, a, b, clusters, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% CI of AUC(a) - AUC(b) by resampling patients (a patient's nodes are not independent, which DeLong
    assumes)."""
    rng = np.random.default_rng(seed)
    ids = np.unique(clusters)
    rows = {c: np.flatnonzero(clusters == c) for c in ids}
    diffs = []
    for _ in range(n_boot):
        idx = np.concatenate([rows[c] for c in rng.choice(ids, len(ids))])
        if 0 < y[idx].sum() < len(idx):
            diffs.append(auc_score(y[idx], a[idx]) - auc_score(y[idx], b[idx]))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def run(folder: Path, args) -> None:
    cohort = read_cohort(folder)
    centres = sorted(cohort.patients["centre"].unique())
    held = held_out_centre(cohort, centres)
    train, test = cohort.in_centres([c for c in centres if c != held]), cohort.in_centres([held])
    y = test.labels().astype(int)
    truth = pd.read_csv(folder / "truth" / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    node_truth = pd.read_csv(folder / "truth" / "nodes.csv", dtype={"node_id": str}).set_index("node_id")
    epochs = {"epochs": args.epochs} if args.epochs else {}
    models = {"dual-energy CT model (HU + iodine map)": _fit("dual", CtModel(seed=0, **epochs), train),
              "single-energy CT model (HU only)": _fit("single", CtModel(seed=0, energy="single", **epochs), train),
              "dual-energy, CNN alone (no measurements)": _fit("cnn alone", CtModel(seed=0, measurements=False,
                                                                                  **epochs), train)}
    scores = {name: m.predict_levels(test) for name, m in models.items()}
    oracle_auc = auc_score(y.to_numpy(), truth.loc[y.index, "risk_ct"].to_numpy())
    print(f"\nheld-out centre {held}: {len(y)} patients, {int(y.sum())} N1b; risk_ct AUC {oracle_auc:.3f} (the ceiling)")
    print(f"{'model':40s} {'patient AUC (95% CI)':>22s} {'x risk_ct':>9s} {'node AUC':>8s}")
    p = {}
    for name, levels in scores.items():
        p[name] = levels["patients"].loc[y.index].to_numpy()
        auc, low, high = auc_ci(y.to_numpy(), p[name])
        nodes = levels["nodes"]
        node_auc = auc_score(node_truth.loc[nodes.index, "metastatic_true"].to_numpy(), nodes.to_numpy())
        print(f"{name:40s} {auc:.3f} ({low:.3f}-{high:.3f}) {auc / oracle_auc:9.3f} {node_auc:8.3f}")
    dual, single = list(p.values())[:2]
    t = delong_test(y.to_numpy(), dual, single)
    print(f"dual - single, patients: {t.difference:+.3f} ({t.difference_ci_low:+.3f}, {t.difference_ci_high:+.3f}), "
          f"paired DeLong p = {t.p_value:.4f}")
    nodes = [levels["nodes"] for levels in scores.values()][:2]
    truth_nodes = node_truth.loc[nodes[0].index]
    y_nodes = truth_nodes["metastatic_true"].to_numpy()
    t = delong_test(y_nodes, nodes[0].to_numpy(), nodes[1].loc[nodes[0].index].to_numpy())
    low, high = cluster_difference_ci(y_nodes, nodes[0].to_numpy(), nodes[1].loc[nodes[0].index].to_numpy(),
                                      truth_nodes["patient_id"].to_numpy())
    print(f"dual - single, nodes ({len(y_nodes)}, {int(y_nodes.sum())} metastatic): {t.difference:+.3f} "
          f"(DeLong {t.difference_ci_low:+.3f}, {t.difference_ci_high:+.3f}; patient-cluster bootstrap {low:+.3f}, "
          f"{high:+.3f}), paired DeLong p = {t.p_value:.2g}")
    pd.DataFrame({**p, "label": y.to_numpy()}, index=y.index).to_csv(
        Path(tempfile.gettempdir()) / "bench_ct_patients.csv")
    timing(next(iter(models.values())), test, args.threads)


if __name__ == "__main__":
    main()
