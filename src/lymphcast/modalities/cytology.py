"""The cytology model: P(N1b) per patient from the fine-needle aspiration cytology of the primary tumour.

fit: each labelled patient's bag of tiles (cytology_bags: the slide, else the photographed fields, tiled at
`mpp` with background skipped) → a Macenko stain reference fitted on the training patients' tiles, every
image normalised to it (cytology_stain) and, by default, reduced to grey levels (the hue that normalisation leaves
is what another lab's stain still changes) → a patient-level split into training and validation (stratified by
N1b) → MilNet (nets.mil_net: tile encoder + gated attention) trained from scratch in two stages
(cytology_training: the encoder without labels, contrastively, on the training patients' tiles under stain
jitter, focus and orientation augmentation; then attention and a linear head on whole bags of frozen embeddings,
class weights, the head started from a linear probe on the mean tile embedding, early stopping on the validation
patients, checkpoint/resume) → a second reader on the same normalised smear (cytology_measure: nuclear stain
and contrast, dispersed cells, small clusters, counted window by window; a ridge logistic regression fitted on
all training patients, validation ones included, cross-fitted for the next step) → the two scores combined
and recalibrated by one logistic regression on the validation patients (Platt scaling of the bag logits when
the reader is off), whose probabilities are kept in `validation_proba_`.

Why two readers: on a fresh cohort (seed 67 of the generator) the network's tile embeddings recovered the share
of hobnail cells with a cross-validated correlation of 0.62 and the presence of micropapillary clusters with an
AUC of 0.74; the counts reach a rank correlation of 0.88 with the hobnail cells drawn and an AUC of 0.95-0.99 for
micropapillary clusters, in either stain (tall cells by a rule of their own in Diff-Quik smears, whose dense
cytoplasm takes the nuclei's purple). The network still reads what the counts miss (anything a user's own data
holds that no count was written for).
Patients without a cytology image get NaN (fusion masks them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..cohort import Cohort, LymphCastError
from .base import ModalityModel, probability_series, reader_aucs
from .fitted_network import FittedNetwork
from .cytology_bags import Bags, covered, grey_bags, normalise_bags, read_bags
from .cytology_measure import cross_fitted_log_odds, describe, fit_reader, measure_bags, reader_log_odds
from .cytology_training import EVAL_CHUNK, padded
from .node_model import load_weights
from .node_training import split_patients

STACK_C = 1.0
DEFAULT_STAIN_VECTORS = np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]])  # without a reference: H&E-like


class CytologyModel(FittedNetwork, ModalityModel):
    """Patient-level cytology model (attention-based multiple-instance learning).

    tile_px/mpp: tile side in pixels and the magnification tiles are read at (µm per pixel; 32 px at 1 µm is a
    few cells); min_tissue: share of a tile that must hold stain (low: one dispersed cell fills a sixth of a
    32 µm tile, and dispersed cells are a sign the model must see); max_tiles: tiles kept per patient (a seeded
    random subset beyond that); epochs/ssl_steps/ssl_batch: the encoder's contrastive stage (cytology_training:
    epochs of ssl_steps steps of ssl_batch tiles, two views each); bag_epochs/batch_size (patients per
    step)/patience: the attention stage on whole bags; lr: both; val_fraction: patients held out for early
    stopping and calibration; measurements: fit the measurement reader (cytology_measure) beside the network;
    stain_norm: map every image onto the training stains (Macenko) first; grey: then give the network grey levels
    only (cytology_bags.grey_bags: what is left of a stain's colour after normalisation still cost a Diff-Quik lab
    AUC); channels/dim: encoder widths and embedding size; weights: optional local file of MilNet weights to start
    from (nothing is ever downloaded); checkpoint: file to checkpoint and resume.
    """

    name = "cytology"
    level = "patient"
    oof = "validation"

    def __init__(self, *, seed: int = 0, tile_px: int = 32, mpp: float = 1.0, min_tissue: float = 0.05,
                 max_tiles: int = 1024, epochs: int = 6, ssl_steps: int = 150, ssl_batch: int = 256,
                 bag_epochs: int = 150, batch_size: int = 8, lr: float = 2e-3, patience: int = 20,
                 val_fraction: float = 0.25, measurements: bool = True,
                 stain_norm: bool = True, grey: bool = True,
                 channels: tuple = (16, 32, 64), dim: int = 64, weights: str | None = None,
                 checkpoint: str | None = None, progress: bool = True):
        self.seed = seed
        self.tile_px = tile_px
        self.mpp = mpp
        self.min_tissue = min_tissue
        self.max_tiles = max_tiles
        self.ssl_steps = ssl_steps
        self.ssl_batch = ssl_batch
        self.bag_epochs = bag_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.measurements = measurements
        self.stain_norm = stain_norm
        self.grey = grey
        self.channels = channels
        self.dim = dim
        self.weights = weights
        self.checkpoint = checkpoint
        self.progress = progress

    # --- data -----------------------------------------------------------------------------------
    def normalised_bags(self, cohort: Cohort) -> Bags:
        """The cohort's tile bags in colour, normalised to the fitted stain reference (when the model uses one)."""
        raw = read_bags(cohort, tile_px=self.tile_px, mpp=self.mpp, max_tiles=self.max_tiles,
                        min_tissue=self.min_tissue, seed=self.seed, progress=self.progress)
        reference = getattr(self, "stain_reference_", None)
        return normalise_bags(raw, reference) if reference is not None and len(raw) else raw

    def network_input(self, bags: Bags) -> Bags:
        return grey_bags(bags) if getattr(self, "grey", False) and len(bags) else bags  # models saved before: colour

    def bags(self, cohort: Cohort) -> Bags:
        """The cohort's tile bags as the network reads them."""
        return self.network_input(self.normalised_bags(cohort))

    # --- training -------------------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> "CytologyModel":
        from .cytology_stain import fit_reference
        from .cytology_training import StageSettings, train_two_stage

        data = cohort.labelled()
        data = data.subset(covered(data))
        labels = data.labels().astype(int)
        if min(int(labels.sum()), int((labels == 0).sum())) < 4:
            raise LymphCastError(f"cohort '{data.meta.name}' has {int(labels.sum())} patients with and "
                                 f"{int((labels == 0).sum())} without N1b among those with cytology images "
                                 f"(cytology.csv); the cytology model needs at least 4 of each")
        raw = read_bags(data, tile_px=self.tile_px, mpp=self.mpp, max_tiles=self.max_tiles,
                        min_tissue=self.min_tissue, seed=self.seed, progress=self.progress)
        data = data.subset(raw.patient_ids)  # a patient whose images hold no tissue teaches nothing
        train_p, val_p = split_patients(data, self.val_fraction, self.seed)
        in_train = raw.patient_ids.isin(train_p)
        if self.stain_norm:
            train_tiles = np.isin(raw.owner, np.flatnonzero(in_train))
            self.stain_reference_ = fit_reference(raw.tiles[train_tiles], self.seed)
            bags = normalise_bags(raw, self.stain_reference_)
        else:
            self.stain_reference_, bags = None, raw
        colour, bags = bags, self.network_input(bags)
        y = data.labels().astype(int).reindex(bags.patient_ids).to_numpy()
        train_idx, val_idx = np.flatnonzero(in_train), np.flatnonzero(~in_train)
        net = self._new_net()
        settings = StageSettings(ssl_epochs=self.epochs, ssl_steps=self.ssl_steps, ssl_batch=self.ssl_batch,
                                 bag_epochs=self.bag_epochs, batch_size=self.batch_size, lr=self.lr,
                                 patience=self.patience, seed=self.seed)
        result = train_two_stage(net, bags, y, train_idx, val_idx, self._basis(), settings,
                                 checkpoint=Path(self.checkpoint) if self.checkpoint else None,
                                 config={"model": self.get_params(), "patients": sorted(map(str, bags.patient_ids))},
                                 progress=self.progress)
        self.state_dict_ = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self._net = net
        self.history_, self.best_epoch_ = result["history"], result["best_epoch"]
        self.ssl_history_ = result["ssl_history"]
        measured = self._measure(colour)
        logits = self._logits(bags)
        if measured is not None:
            # the reader learns from every training patient (the validation ones too: +0.006-0.009 AUC on seed 67
            # over the training part alone); the recalibration sees each patient's score from a reader fitted
            # without it
            self.reader_ = fit_reader(measured, y)
            scores = np.column_stack([logits, cross_fitted_log_odds(measured, y, self.seed)])
        else:
            self.reader_, scores = None, logits[:, None]
        # unpenalised for Platt scaling alone; with two scores a mild ridge, so that a reader separating a small
        # validation set by chance cannot take an unbounded weight
        self.calibration_ = LogisticRegression(C=1e4 if scores.shape[1] == 1 else STACK_C,
                                               max_iter=1000).fit(scores[val_idx], y[val_idx])
        val_ids = bags.patient_ids[val_idx]
        self.validation_proba_ = probability_series(self._calibrated(scores[val_idx]), val_ids)
        self.training_summary_ = {"patients_train": len(train_idx), "patients_validation": len(val_idx),
                                  "events_train": int(y[train_idx].sum()), "tiles": len(bags.tiles),
                                  "median_tiles_per_patient": float(np.median([len(m) for m in bags.members()])),
                                  "images_not_normalised": int((~bags.normalised).sum()) if self.stain_norm else None,
                                  "stain_reference_fitted": (bool(self.stain_reference_["fitted"]) if self.stain_norm
                                                             else None),
                                  "contrastive_loss": [round(h["contrastive_loss"], 4) for h in result["ssl_history"]],
                                  "probe_C": result["probe"]["C"],
                                  "best_epoch": result["best_epoch"], "epochs_run": result["epochs_run"],
                                  "resumed_from": result["resumed_from"],
                                  "validation_auc": reader_aucs(y[val_idx], scores[val_idx], self._score_names(),
                                                                self._calibrated(scores[val_idx])),
                                  "score_weights": {k: float(w) for k, w in
                                                    zip(self._score_names(), self.calibration_.coef_[0])}}
        return self

    # --- the two readers ------------------------------------------------------------------------
    def _measure(self, colour: Bags) -> pd.DataFrame | None:
        """The measurement reader's input for these (colour, normalised) bags; None when the reader is off."""
        if not getattr(self, "measurements", False):  # models saved before the reader existed lack the field
            return None
        return measure_bags(colour, self._stain_vectors(), self.mpp, progress=self.progress)

    def _stain_vectors(self) -> np.ndarray:
        ref = getattr(self, "stain_reference_", None)
        return np.asarray(ref["he"] if ref is not None else DEFAULT_STAIN_VECTORS, float)

    def _stack(self, raw: np.ndarray, measured: pd.DataFrame | None) -> np.ndarray:
        """(n, 1) bag logits, or (n, 2) bag logits and the measurement reader's log-odds."""
        if measured is None or getattr(self, "reader_", None) is None:
            return raw[:, None]
        return np.column_stack([raw, reader_log_odds(self.reader_, measured)])

    def _score_names(self) -> list[str]:
        return ["network", "measurements"][:self.calibration_.coef_.shape[1]]

    def _calibrated(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, float)
        scores = scores[:, None] if scores.ndim == 1 else scores  # models saved before the reader: 1-D logits
        return self.calibration_.predict_proba(scores)[:, 1] if len(scores) else np.zeros(0)

    def patient_scores(self, cohort: Cohort) -> tuple[Bags, np.ndarray, pd.DataFrame | None]:
        """The network's bags, what the recalibration reads (bag logits and the reader's log-odds) and the
        measurements, for the patients of `cohort` with cytology images."""
        colour = self.normalised_bags(cohort)
        bags = self.network_input(colour)
        if not len(bags):
            return bags, np.zeros((0, 1)), None
        measured = self._measure(colour) if getattr(self, "reader_", None) is not None else None
        return bags, self._stack(self._logits(bags), measured), measured

    def patient_details(self, cohort: Cohort, patient_ids) -> dict[str, str]:
        """patient_id → caption: the smear's measurements and each reader's share of the score (log-odds), for
        the report; {} when the model has no measurement reader."""
        if getattr(self, "reader_", None) is None:
            return {}
        known = set(cohort.patients["patient_id"])
        wanted = [p for p in patient_ids if p in known]
        bags, scores, measured = self.patient_scores(cohort.subset(wanted))
        share = scores * self.calibration_.coef_[0]
        return {pid: f"{describe(measured.loc[pid])}; network {share[i, 0]:+.2f}, measurements {share[i, 1]:+.2f} "
                     f"(log-odds)" for i, pid in enumerate(bags.patient_ids)}

    # --- network --------------------------------------------------------------------------------
    def _new_net(self):
        import torch

        from ..nets.mil_net import MilNet

        torch.manual_seed(self.seed)
        net = MilNet(channels=tuple(self.channels), dim=self.dim)
        if self.weights:
            load_weights(net, self.weights, f"MilNet weights for channels {tuple(self.channels)} and dim {self.dim}")
        return net

    def _basis(self):
        from ..nets.stain_augment import stain_basis

        ref = self.stain_reference_
        return stain_basis(ref["he"] if ref is not None else DEFAULT_STAIN_VECTORS)

    def attend(self, bags: Bags) -> tuple[np.ndarray, list[np.ndarray]]:
        """Bag logits (one per patient of `bags`) and each patient's tile attention (in bags.members() order)."""
        import torch

        net, members = self.network(), bags.members()
        logits, attention = [], []
        with torch.no_grad():
            for start in range(0, len(members), EVAL_CHUNK):
                part = members[start:start + EVAL_CHUNK]
                x, mask = padded(bags.tiles, part)
                out, att = net.attend(x, mask)
                logits.append(out.numpy())
                attention += [a[:len(rows)].numpy() for a, rows in zip(att, part)]
        return (np.concatenate(logits).astype(float) if logits else np.zeros(0)), attention

    def _logits(self, bags: Bags) -> np.ndarray:
        return self.attend(bags)[0]

    # --- prediction -----------------------------------------------------------------------------
    def predict_proba(self, cohort: Cohort) -> pd.Series:
        self.check_fitted()
        ids = cohort.patients["patient_id"]
        out = probability_series(np.nan, ids)
        bags, scores, _ = self.patient_scores(cohort)
        if len(bags):
            out.loc[bags.patient_ids] = self._calibrated(scores)
        return out

    def figures(self) -> dict:
        from .us_image_figures import training_curve

        if not self.is_fitted:
            return {}
        return {"training": training_curve(self.history_, self.best_epoch_)}
