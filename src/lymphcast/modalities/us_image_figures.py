"""Pictures of a fitted ultrasound-image model, saved with its bundle: how training went and why its roll-up
was chosen (the measurement behind the choice, on the validation patients)."""

from __future__ import annotations

import pandas as pd


def training_curve(history: list[dict], best_epoch: int):
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(frame["epoch"], frame["train_loss"], label="training (augmented)")
    ax.plot(frame["epoch"], frame["val_loss"], label="validation patients")
    ax.axvline(best_epoch, color="grey", linestyle=":", label=f"kept: epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("class-weighted log loss")
    ax.set_title("Node CNN training")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def rollup_comparison(scores: pd.DataFrame, chosen: str, title: str):
    """Patient-level log loss (lower is better) and AUC of each node → patient roll-up."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
    colours = ["tab:red" if m == chosen else "tab:grey" for m in scores.index]
    for ax, column, label in zip(axes, ("log_loss", "auc"), ("log loss (lower is better)", "AUC")):
        ax.barh(list(scores.index), scores[column], color=colours)
        for y, v in enumerate(scores[column]):
            ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlabel(label)
        ax.margins(x=0.25)
    axes[0].set_title(f"{title}: chosen {chosen} (red)", loc="left", fontsize=10)
    fig.tight_layout()
    return fig
