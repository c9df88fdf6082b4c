"""The contrast-CT model: P(metastatic) per lymph node from a node-centred 3D cube of its CT study (plus the
iodine map where the study is dual-energy), rolled up to each neck side and to the patient.

fit: node cubes (ct_crops: each study read once, the series chosen by rule, resampled to 1 mm) of the labelled
patients → a patient-level split into training and validation (node_training) → CtNet trained from scratch
(nets.training: class weights, 3D augmentation with mirror/rotation/shift/HU jitter and iodine dropout, early
stopping on validation loss, checkpoint/resume) → a second reader on the same cubes (ct_measure: the node's
size, attenuation, iodine, cystic part and calcification measured on a region grown from the centre, read by
gradient-boosted trees fitted on the training nodes) → the two node scores combined and recalibrated by one
logistic regression on the validation nodes (Platt scaling when the reader is off) → the roll-up (noisy-OR, max
or learned) chosen by log loss on the validation patients.
`energy="single"` ignores iodine maps even where they exist: the comparison that measures what dual-energy adds;
`measurements=False` scores with the CNN alone.

Why two readers: on held-out centres (fresh seeds 71 and 101 of the generator) the CNN alone ranked nodes
worse than the measurements did, and the combination better than either (README, CT figures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ..cohort import Cohort, LymphCastError
from .base import reader_aucs
from .ct_crops import CHANNELS, Crops, ct_nodes, node_crops
from .ct_measure import describe, fit_reader, measure_crops
from .node_model import NodeNetworkModel, load_weights
from .node_training import check_rollup_setting, choose_rollup, node_split

ENERGIES = ("dual", "single")
VALIDATE_ON = ("patients", "centre")


class CtModel(NodeNetworkModel):
    """Node-level contrast-CT model.

    size/spacing_mm: cube side in voxels and voxel size (32 x 1 mm covers nodes up to ~25 mm with context);
    energy: "dual" (iodine map as a second channel where the study has one) or "single"; iodine_dropout: share
    of dual-energy training cubes shown without their iodine map; epochs/batch_size/lr/patience/val_fraction:
    training; rollup: "auto" or one of noisy_or, max, learned; channels: encoder widths; measurements: add the
    measurement reader (ct_measure) beside the CNN; reconstruction_augment: train on cubes re-blurred to other slice
    thicknesses with extra noise (nets.ct_augment); validate_on: "patients" (a random quarter) or "centre" (one
    whole training centre, node_training.split_by_centre) for early stopping, recalibration and roll-up;
    weights: optional local file of CtNet weights to start from (nothing is ever downloaded); checkpoint: file
    to checkpoint and resume.
    """

    name = "ct"
    media_nodes = staticmethod(ct_nodes)

    def __init__(self, *, seed: int = 0, size: int = 32, spacing_mm: float = 1.0, energy: str = "dual",
                 iodine_dropout: float = 0.3, epochs: int = 30, batch_size: int = 32, lr: float = 2e-3,
                 patience: int = 8, val_fraction: float = 0.25, rollup: str = "auto", channels: tuple = (16, 32, 64),
                 measurements: bool = True, reconstruction_augment: bool = False, validate_on: str = "patients",
                 weights: str | None = None, checkpoint: str | None = None, progress: bool = True):
        self.seed = seed
        self.size = size
        self.spacing_mm = spacing_mm
        self.energy = energy
        self.iodine_dropout = iodine_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.val_fraction = val_fraction
        self.rollup = rollup
        self.channels = channels
        self.measurements = measurements
        self.reconstruction_augment = reconstruction_augment
        self.validate_on = validate_on
        self.weights = weights
        self.checkpoint = checkpoint
        self.progress = progress

    @property
    def inputs(self) -> tuple[str, ...]:
        return CHANNELS if self.energy == "dual" else CHANNELS[:1]

    # --- training -------------------------------------------------------------------------------
    def fit(self, cohort: Cohort) -> "CtModel":
        from ..nets.training import TrainSettings, fit_binary

        check_rollup_setting(self.rollup)
        if self.energy not in ENERGIES:
            raise LymphCastError(f"energy must be one of {', '.join(ENERGIES)}, not {self.energy!r}")
        if self.validate_on not in VALIDATE_ON:
            raise LymphCastError(f"validate_on must be one of {', '.join(VALIDATE_ON)}, not {self.validate_on!r}")
        data = cohort.labelled()
        data = data.subset(self.covered_patients(data))  # patients without a CT study teach nothing here
        crops = self.crops(data)
        nodes = ct_nodes(data).set_index("node_id").loc[crops.node_ids]
        y, train_idx, val_idx, train_p, val_p = node_split(data, nodes, model=self.name, media="CT studies",
                                                            val_fraction=self.val_fraction, seed=self.seed,
                                                            by_centre=self.validate_on == "centre")
        net = self._new_net()
        settings = TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                 patience=self.patience, seed=self.seed)
        forward = _forward(crops, self.iodine_dropout, self.reconstruction_augment)
        result = fit_binary(net, forward, y, train_idx, val_idx, settings,
                            checkpoint=Path(self.checkpoint) if self.checkpoint else None,
                            config={"model": self.get_params(), "patients": sorted(map(str, data.patients["patient_id"]))},
                            progress=self.progress, describe="training the CT node CNN")
        self.state_dict_ = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self._net = net
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        raw = self._logits(crops)
        features = self._measure(crops)
        self.reader_ = self.reader_columns_ = None
        if features is not None:
            # columns never measured in training (the iodine ones without any iodine map) cannot be read
            self.reader_columns_ = np.flatnonzero(~np.isnan(features[train_idx]).all(axis=0))
            self.reader_ = fit_reader(features[train_idx][:, self.reader_columns_], y[train_idx], self.seed)
        scores = self._stack(raw, features)
        self.calibration_ = LogisticRegression(C=1e4, max_iter=1000).fit(scores[val_idx], y[val_idx])
        val = data.subset(val_p)
        sides = self.side_table(val, pd.Series(self._calibrated(scores), index=crops.node_ids))
        self.rollup_scores_, self.rollup_, self.rollup_model_, self.validation_proba_ = choose_rollup(
            val, sides, self.rollup, self.seed)
        self.training_summary_ = {"patients_train": len(train_p), "patients_validation": len(val_p),
                                  "nodes_train": len(train_idx), "nodes_validation": len(val_idx),
                                  "node_events_train": int(y[train_idx].sum()),
                                  "dual_energy_nodes": int(crops.present[:, 1].sum()) if crops.present.shape[1] > 1 else 0,
                                  "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                                  "resumed_from": result.resumed_from,
                                  "validation_node_auc": reader_aucs(y[val_idx], scores[val_idx], self._score_names(),
                                                                     self._calibrated(scores[val_idx])),
                                  "node_score_weights": {k: round(float(w), 3) for k, w in
                                                         zip(self._score_names(), self.calibration_.coef_[0])}}
        return self

    # --- the two readers ------------------------------------------------------------------------
    def _measure(self, crops: Crops) -> np.ndarray | None:
        if not getattr(self, "measurements", False):  # models saved before the reader existed lack the field
            return None
        return measure_crops(crops.volumes, crops.present, self.spacing_mm)

    def _stack(self, raw: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """(n, 1) CNN logits, or (n, 2) CNN logits and the reader's log-odds."""
        if features is None or getattr(self, "reader_", None) is None:
            return raw[:, None]
        reader = self.reader_.decision_function(features[:, self.reader_columns_]) if len(features) else raw
        return np.column_stack([raw, reader])

    def _score_names(self) -> list[str]:
        return ["cnn", "measurements"][:self.calibration_.coef_.shape[1]]

    def _calibrated(self, scores: np.ndarray) -> np.ndarray:
        scores = scores if scores.ndim == 2 else scores[:, None]
        return self.calibration_.predict_proba(scores)[:, 1] if len(scores) else np.zeros(0)

    def node_scores(self, crops: Crops) -> np.ndarray:
        """What the recalibration reads for these cubes: CNN logits, and the reader's log-odds when it is on."""
        return self._stack(self._logits(crops), self._measure(crops))

    def node_details(self, cohort: Cohort, node_ids) -> dict[str, str]:
        """node_id → caption: the node's measurements and each reader's share of its score (log-odds), for the
        report; {} when the model has no measurement reader."""
        if getattr(self, "reader_", None) is None:
            return {}
        crops = self.crops(cohort)
        rows = {n: i for i, n in enumerate(crops.node_ids)}
        wanted = [n for n in dict.fromkeys(map(str, node_ids)) if n in rows]
        at = [rows[n] for n in wanted]
        picked = Crops(pd.Index(wanted), crops.volumes[at], crops.present[at])
        features = self._measure(picked)
        share = self._stack(self._logits(picked), features) * self.calibration_.coef_[0]
        return {n: f"{describe(f)}. Score from the CNN {s[0]:+.1f}, from the measurements {s[1]:+.1f} (log-odds)"
                for n, f, s in zip(wanted, features, share)}

    # --- network --------------------------------------------------------------------------------
    def _new_net(self):
        import torch

        from ..nets.ct_net import CtNet

        torch.manual_seed(self.seed)
        net = CtNet(n_inputs=len(self.inputs), channels=tuple(self.channels))
        if self.weights:
            load_weights(net, self.weights,
                         f"CtNet weights for {len(self.inputs)} input(s) and channels {tuple(self.channels)}")
        return net

    def crops(self, cohort: Cohort) -> Crops:
        return node_crops(cohort, size=self.size, spacing_mm=self.spacing_mm, channels=self.inputs,
                          progress=self.progress)

    def _logits(self, crops: Crops) -> np.ndarray:
        import torch

        from ..nets.ct_net import prepare

        net = self.network()
        out = []
        with torch.no_grad():
            for start in range(0, len(crops), 64):
                x = torch.from_numpy(crops.volumes[start:start + 64].astype(np.float32))
                m = torch.from_numpy(crops.present[start:start + 64])
                out.append(net(prepare(x, m), m).numpy())
        return np.concatenate(out).astype(float) if out else np.zeros(0)

    # --- prediction -----------------------------------------------------------------------------
    def predict_nodes(self, cohort: Cohort) -> pd.Series:
        self.check_fitted()
        crops = self.crops(cohort)
        return pd.Series(self._calibrated(self.node_scores(crops)), index=crops.node_ids, name="probability",
                         dtype="float64")


def _forward(crops: Crops, iodine_dropout: float, reconstruction: bool):
    """The training loop's forward: 3D augmentation of training batches (nets.ct_augment)."""
    import torch

    from ..nets.ct_augment import augment
    from ..nets.ct_net import prepare

    def forward(net, idx, train, gen):
        x = torch.from_numpy(crops.volumes[idx].astype(np.float32))
        m = torch.from_numpy(crops.present[idx])
        if train:
            x, m = augment(x, m, gen, drop_iodine=iodine_dropout, reconstruction=reconstruction)
        return net(prepare(x, m), m)

    return forward
