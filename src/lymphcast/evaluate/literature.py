"""Published accuracy of ultrasound and CT for lateral neck metastasis, pooled, to place models against.

Counts. The packaged table (data/literature_table1.csv, 8 studies) gives each study's sensitivity, specificity
and total patients, not its 2x2 counts. We rebuild approximate counts by assuming one prevalence of lateral
metastasis in every study, ASSUMED_PREVALENCE = 0.25: these are surgical series that imaged the lateral neck
before operating, so the upper end of CLINICAL_FACTS' range ("N1b in operated PTC 10-14%; surgical referral
series up to ~25%") fits best. diseased = round(prevalence * patients), tp = round(sens * diseased), and alike
for specificity. The assumption sets the within-study variances (lower prevalence: larger sensitivity variances),
so point estimates move little (< 0.01 from 0.10 to 0.25; see the tests). 0.5 is added to every cell of every
study (the reconstructed Choi 2009 CT counts have no false positive), keeping both modalities on one footing.

Pooling: bivariate random-effects model of Reitsma et al. (J Clin Epidemiol 2005): (logit sens, logit spec) of
study i ~ N(mu, Sigma + S_i), S_i diagonal with the within-study variances 1/tp + 1/fn and 1/tn + 1/fp, Sigma the
between-study covariance (tau2_sens, tau2_spec, rho). Restricted maximum likelihood (mada::reitsma's default),
mu profiled out by generalised least squares, Sigma by L-BFGS-B from three starts; tau2 at its lower bound is
reported as 0, and rho is bounded to +-0.995 (with 8 studies it can sit near -1). CIs are Wald on the logit
scale from cov(mu) = (sum_i (Sigma + S_i)^-1)^-1, back-transformed; the 95% confidence ellipse of the summary
point likewise. pool_univariate_dl: two separate DerSimonian-Laird fits that ignore the correlation, to compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from ._inputs import check_alpha

Interval = tuple[float, float, float]  # (estimate, low, high)
ASSUMED_PREVALENCE = 0.25
MODALITIES = {"us": "Ultrasound", "ct": "CT"}

# Published operating points (CLINICAL_FACTS "Results to compare with" and the node-level ultrasound summary).
ANCHOR_POINTS = (
    {"name": "Meta-analysis, 19 studies (US AI)", "sensitivity": 0.76, "specificity": 0.78},
    {"name": "Ultrasound overall, node level", "sensitivity": 0.87, "specificity": 0.69},
    {"name": "VGG-Class (US node image, per node)", "sensitivity": 0.795, "specificity": 0.875},
    {"name": "Clinical + CT DL ensemble", "sensitivity": 0.839, "specificity": 0.769},
)
AUC_ANCHORS = tuple(dict(zip(("name", "data", "auc"), row)) for row in (
    ("LLNM-Net (2025, 29,615 patients, 7 centres)", "US image + report text + clinical", "0.944"),
    ("MMD-DL (2024, 4 centres, prospective)", "US video", "0.85 internal, 0.81 external"),
    ("ThyLNT (1,560 patients, 6 hospitals)", "CT", "0.77-0.83 external"),
    ("Ensemble ResNet-50 (1,031 patients)", "US + Doppler + clinical", "0.86 internal, 0.77 external"),
    ("MNANet (US+CT fusion)", "US + CT", "0.86 lateral"),
    ("Meta-analysis of 19 studies", "US AI", "0.84 (Sn 0.76, Sp 0.78)"),
    ("Ultrasound overall (node level)", "US", "~0.83 (Sn ~0.87, Sp ~0.69)"),
    ("Clinical nomograms", "clinical", "0.75-0.87 internal, 0.70-0.79 external"),
))


@dataclass(frozen=True)
class PooledAccuracy:
    modality: str
    method: str
    sensitivity: Interval
    specificity: Interval
    tau2_sensitivity: float
    tau2_specificity: float
    rho: float  # between-study correlation of the logits; NaN for univariate fits
    n_studies: int
    n_patients: int | None = None
    prevalence: float | None = None
    ellipse: np.ndarray | None = field(default=None, repr=False)  # (m, 2): (1 - specificity, sensitivity)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("modality", "method", "tau2_sensitivity", "tau2_specificity", "rho",
                                             "n_studies", "n_patients", "prevalence")}
        for name in ("sensitivity", "specificity"):
            estimate, low, high = getattr(self, name)
            out.update({name: estimate, f"{name}_ci_low": low, f"{name}_ci_high": high})
        return out


def load_literature() -> pd.DataFrame:
    table = pd.read_csv(files("lymphcast.evaluate") / "data" / "literature_table1.csv")
    return table.astype({"study": str, "year": int, "patients": int} | {
        f"{m}_{r}": float for m in MODALITIES for r in ("sensitivity", "specificity")})


def reconstruct_counts(table: pd.DataFrame, modality: str, prevalence: float = ASSUMED_PREVALENCE) -> pd.DataFrame:
    """Approximate (tp, fn, tn, fp) per study from its rates and total patients at an assumed prevalence."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {sorted(MODALITIES)}, got {modality!r}")
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must lie strictly between 0 and 1, got {prevalence}")
    diseased = np.round(prevalence * table["patients"].to_numpy()).astype(int)
    healthy = table["patients"].to_numpy() - diseased
    tp = np.round(table[f"{modality}_sensitivity"].to_numpy() * diseased).astype(int)
    tn = np.round(table[f"{modality}_specificity"].to_numpy() * healthy).astype(int)
    return pd.DataFrame({"study": table["study"], "tp": tp, "fn": diseased - tp, "tn": tn, "fp": healthy - tn})


def logit_effects(tp, fn, tn, fp, correction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(k, 2) logits of (sensitivity, specificity) and (k, 2) within-study variances, `correction` added to all."""
    tp, fn, tn, fp = (np.asarray(c, dtype=float) + correction for c in (tp, fn, tn, fp))
    if min(c.min() for c in (tp, fn, tn, fp)) <= 0:
        raise ValueError("zero cells need a positive continuity correction")
    y = np.column_stack([np.log(tp / fn), np.log(tn / fp)])
    return y, np.column_stack([1 / tp + 1 / fn, 1 / tn + 1 / fp])


def _gls(y, var, tau2, rho):
    """Marginal covariances V_i, their inverses, GLS mu and cov(mu) for given between-study parameters."""
    cov = rho * np.sqrt(tau2[0] * tau2[1])
    V = np.zeros((len(y), 2, 2))
    V[:, 0, 0], V[:, 1, 1] = var[:, 0] + tau2[0], var[:, 1] + tau2[1]
    V[:, 0, 1] = V[:, 1, 0] = cov
    W = np.linalg.inv(V)
    cov_mu = np.linalg.inv(W.sum(axis=0))
    mu = cov_mu @ np.einsum("kij,kj->i", W, y)
    return V, W, mu, cov_mu


def reml_deviance(y, var, tau2, rho: float) -> float:
    """-2 x restricted log-likelihood of the bivariate model, constants dropped, mu at its GLS value."""
    y, var, tau2 = np.asarray(y, float), np.asarray(var, float), np.asarray(tau2, float)
    V, W, mu, cov_mu = _gls(y, var, tau2, rho)
    r = y - mu
    return float(np.linalg.slogdet(V)[1].sum() + np.einsum("ki,kij,kj->", r, W, r) - np.linalg.slogdet(cov_mu)[1])


def _interval(mu, se, z) -> tuple[Interval, Interval]:
    return tuple(tuple(float(v) for v in special.expit([m, m - z * s, m + z * s])) for m, s in zip(mu, se))


def pool_bivariate(tp, fn, tn, fp, *, correction: float = 0.5, alpha: float = 0.05, modality: str = "",
                   n_patients: int | None = None, prevalence: float | None = None) -> PooledAccuracy:
    """Reitsma bivariate random-effects summary (REML) of sensitivity and specificity, with a confidence ellipse."""
    z = stats.norm.ppf(1 - check_alpha(alpha) / 2)
    y, var = logit_effects(tp, fn, tn, fp, correction)
    if len(y) < 2:
        raise ValueError("pooling needs at least two studies")

    def objective(theta):  # log tau (x2), atanh rho: unconstrained scales keep the search well behaved
        return reml_deviance(y, var, np.exp(2 * theta[:2]), np.tanh(theta[2]))

    start = 0.5 * np.log(np.maximum(y.var(axis=0, ddof=1) - var.mean(axis=0), 0.05))
    bounds = [(-7.0, 3.0), (-7.0, 3.0), (-3.0, 3.0)]
    best = min((optimize.minimize(objective, [*start, r0], method="L-BFGS-B", bounds=bounds)
                for r0 in (-0.5, 0.0, 0.5)), key=lambda res: res.fun)
    tau2, rho = np.exp(2 * best.x[:2]), float(np.tanh(best.x[2]))
    tau2 = np.where(tau2 < 1e-5, 0.0, tau2)  # at the lower bound: report as no heterogeneity
    _, _, mu, cov_mu = _gls(y, var, np.maximum(tau2, 1e-12), rho)
    sens, spec = _interval(mu, np.sqrt(np.diag(cov_mu)), z)
    angle = np.linspace(0, 2 * np.pi, 100)
    radius = np.sqrt(stats.chi2.ppf(1 - alpha, 2))
    logits = mu[:, None] + radius * np.linalg.cholesky(cov_mu) @ np.vstack([np.cos(angle), np.sin(angle)])
    ellipse = np.column_stack([1 - special.expit(logits[1]), special.expit(logits[0])])
    return PooledAccuracy(modality, "bivariate random effects (Reitsma, REML)", sens, spec, float(tau2[0]),
                          float(tau2[1]), rho, len(y), n_patients, prevalence, ellipse)


def pool_univariate_dl(tp, fn, tn, fp, *, correction: float = 0.5, alpha: float = 0.05, modality: str = "",
                       n_patients: int | None = None, prevalence: float | None = None) -> PooledAccuracy:
    """Two separate DerSimonian-Laird fits on logit sensitivity and logit specificity (ignores their correlation).

    Written out in numpy: statsmodels' combine_effects(method_re="dl") leaves tau2 negative when Q < k - 1."""
    z = stats.norm.ppf(1 - check_alpha(alpha) / 2)
    y, var = logit_effects(tp, fn, tn, fp, correction)
    w = 1 / var
    fixed = (w * y).sum(axis=0) / w.sum(axis=0)
    q = (w * (y - fixed) ** 2).sum(axis=0)
    tau2 = np.maximum(0.0, (q - (len(y) - 1)) / (w.sum(axis=0) - (w ** 2).sum(axis=0) / w.sum(axis=0)))
    w_re = 1 / (var + tau2)
    mu = (w_re * y).sum(axis=0) / w_re.sum(axis=0)
    sens, spec = _interval(mu, np.sqrt(1 / w_re.sum(axis=0)), z)
    return PooledAccuracy(modality, "univariate DerSimonian-Laird (correlation ignored)", sens, spec,
                          float(tau2[0]), float(tau2[1]), float("nan"), len(y), n_patients, prevalence)


def pool_literature(prevalence: float = ASSUMED_PREVALENCE, method: str = "bivariate",
                    table: pd.DataFrame | None = None) -> dict[str, PooledAccuracy]:
    """Pooled accuracy of each modality ("us", "ct") in the packaged table."""
    pool = {"bivariate": pool_bivariate, "dl": pool_univariate_dl}[method]
    table = load_literature() if table is None else table
    out = {}
    for modality in MODALITIES:
        c = reconstruct_counts(table, modality, prevalence)
        out[modality] = pool(c.tp, c.fn, c.tn, c.fp, modality=modality, n_patients=int(table.patients.sum()),
                             prevalence=prevalence)
    return out


def _overlaps(point: dict, name: str, pooled: Interval) -> bool:
    low = point.get(f"{name}_ci_low", point[name])
    high = point.get(f"{name}_ci_high", point[name])
    return bool(low <= pooled[2] and pooled[1] <= high)


def literature_table(operating_points: list[dict] | None = None,
                     pooled: dict[str, PooledAccuracy] | None = None) -> list[dict]:
    """Rows (kind "pooled", "anchor", "model") with sensitivity/specificity and CIs; model rows say whether each
    CI overlaps the pooled US and CT CIs (a point without CI counts as a zero-width interval)."""
    pooled = pool_literature() if pooled is None else pooled
    rows = [{"name": f"{MODALITIES[m]}, pooled ({p.n_studies} studies, {p.n_patients} patients)", "kind": "pooled",
             **p.to_dict()} for m, p in pooled.items()]
    rows += [{"kind": "anchor", **a} for a in ANCHOR_POINTS]
    for point in operating_points or []:
        row = {"kind": "model", **point}
        for m, p in pooled.items():
            for name in ("sensitivity", "specificity"):
                row[f"{name}_overlaps_{m}"] = _overlaps(point, name, getattr(p, name))
        rows.append(row)
    return rows


def auc_anchors() -> list[dict]:
    """Published AUCs (name, data, auc text) for the report to print beside the panel."""
    return [dict(a) for a in AUC_ANCHORS]


def literature_figure(operating_points: list[dict] | None = None, *, pooled: dict[str, PooledAccuracy] | None = None,
                      table: pd.DataFrame | None = None, ax=None):
    """ROC-space panel: studies (size ~ patients), pooled US/CT with CIs and ellipse, anchors, model points."""
    from .plots import _axes, _roc_frame

    table = load_literature() if table is None else table
    pooled = pool_literature(table=table) if pooled is None else pooled
    fig, ax = _axes(ax, size=(6.0, 5.5))
    colors = {"us": "tab:blue", "ct": "tab:orange"}
    sizes = 15 + 85 * table["patients"] / table["patients"].max()
    for m, p in pooled.items():
        ax.scatter(1 - table[f"{m}_specificity"], table[f"{m}_sensitivity"], s=sizes, color=colors[m], alpha=0.45,
                   label=f"{MODALITIES[m]} studies (size ~ patients)")
        (sn, sn_lo, sn_hi), (sp, sp_lo, sp_hi) = p.sensitivity, p.specificity
        ax.errorbar(1 - sp, sn, xerr=[[sp_hi - sp], [sp - sp_lo]], yerr=[[sn - sn_lo], [sn_hi - sn]], fmt="D",
                    color=colors[m], mec="black", ms=7, capsize=3, label=f"{MODALITIES[m]} pooled (95% CI)")
        if p.ellipse is not None:
            ax.plot(p.ellipse[:, 0], p.ellipse[:, 1], color=colors[m], lw=1, ls="--",
                    label="95% confidence region" if m == "ct" else None)
    for i, a in enumerate(ANCHOR_POINTS):
        ax.plot(1 - a["specificity"], a["sensitivity"], marker="*", color="grey", ms=9, ls="none",
                label="published operating points" if i == 0 else None)
        ax.annotate(a["name"], (1 - a["specificity"], a["sensitivity"]), fontsize=6, color="dimgrey",
                    xytext=(4, -8), textcoords="offset points")
    model_colors = ["tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for i, point in enumerate(operating_points or []):  # colours kept apart from the US/CT pair
        sn, sp = point["sensitivity"], point["specificity"]
        yerr = [[sn - point.get("sensitivity_ci_low", sn)], [point.get("sensitivity_ci_high", sn) - sn]]
        xerr = [[point.get("specificity_ci_high", sp) - sp], [sp - point.get("specificity_ci_low", sp)]]
        ax.errorbar(1 - sp, sn, xerr=np.clip(xerr, 0, None), yerr=np.clip(yerr, 0, None), fmt="o", ms=7,
                    color=model_colors[i % len(model_colors)], capsize=3, lw=1.5, label=str(point.get("name", "model")))
    ax.set_title("Models against published US and CT accuracy", fontsize="medium")
    _roc_frame(ax)
    return fig
