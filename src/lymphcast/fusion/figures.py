"""Pictures of the fusion model: what weight each stacker gives each modality (and its absence)."""

from __future__ import annotations


def stacker_weights(patient, side=None, level=None):
    """Horizontal bars of the stackers' coefficients: log-odds weight per modality and per missing-modality mask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stackers = [(t, s) for t, s in (("patient", patient), ("side", side), ("level", level)) if s is not None]
    fig, axes = plt.subplots(1, len(stackers), figsize=(4.2 * len(stackers), 3.6), squeeze=False)
    for ax, (title, stacker) in zip(axes[0], stackers):
        w = stacker.weights().drop("intercept")
        ax.barh(range(len(w)), w.to_numpy(), color=["tab:blue" if not n.endswith("_present") else "tab:grey"
                                                      for n in w.index])
        ax.set_yticks(range(len(w)), [n.replace("_present", " (present)") for n in w.index], fontsize=8)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(f"{title} stacker", fontsize=9)
        ax.set_xlabel("coefficient (log-odds)", fontsize=8)
    fig.tight_layout()
    return fig
