"""What each fitted modality model "sees" of a patient, as a numeric vector: the inputs of intermediate
(feature-level) fusion, the comparison to stacking.

- node-level networks (us_image, us_video, ct): the network's last hidden layer (the input of its final linear
  layer `out`; for the clip network also the standardised size numbers its `size_logit` adds), read with forward
  hooks while the model's own batching code scores the nodes, then pooled over the patient's nodes by mean and
  max (a patient's risk is driven by its worst node: the max keeps it);
- cytology: the bag vector the linear head reads (attention-pooled and plain mean tile embeddings), by a hook on
  `head`;
- clinical: the fitted preprocessing's output (imputed, log-scaled, standardised, one-hot fields).

Hooks instead of new methods on the models: the modality modules stay as they are, and the features are exactly
what the trained network computed on its usual path (eval mode, same batching, same test-time averaging).
A patient a modality has no data for is simply absent from that modality's frame (the caller masks it).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np
import pandas as pd

from ..cohort import Cohort, LymphCastError


@contextmanager
def captured_inputs(module):
    """Collects the first positional input of every forward call of `module` (as NumPy arrays) while open."""
    store: list[np.ndarray] = []
    handle = module.register_forward_hook(lambda _m, inputs, _out: store.append(inputs[0].detach().cpu().numpy()))
    try:
        yield store
    finally:
        handle.remove()


def _stacked(store: list[np.ndarray], n: int, what: str) -> np.ndarray:
    """The captured batches as one (n, d) array; where the model called its network k times per batch (test-time
    mirroring: k = 2, the same rows each time) consecutive calls are averaged as the logits are."""
    if not store:
        return np.zeros((0, 0))
    rows = sum(len(b) for b in store)
    if rows == n:
        return np.concatenate(store).astype(float)
    if rows == 2 * n and len(store) % 2 == 0:
        return np.concatenate([(a + b) / 2 for a, b in zip(store[::2], store[1::2])]).astype(float)
    raise LymphCastError(f"{what}: the network's hidden layer was read for {rows} rows, not the {n} inputs scored; "
                         f"its batching is not one the feature hook understands")


def node_features(model, cohort: Cohort) -> pd.DataFrame:
    """Last hidden layer of a node-level network per scored node: index node_id, one column per unit."""
    name = model.name
    net = model.network()
    if name == "us_image":
        data = model._regions(cohort)
        run = lambda: model._logits(data)  # noqa: E731
    elif name == "us_video":
        data = model._clips(cohort)
        run = lambda: model._run(data)  # noqa: E731
    elif name == "ct":
        data = model.crops(cohort)
        run = lambda: model._logits(data)  # noqa: E731
    else:
        raise LymphCastError(f"no node features for the '{name}' model")
    if not len(data.node_ids):
        return pd.DataFrame(index=pd.Index([], name="node_id"))
    wide = getattr(net, "size_logit", None)  # the clip network's size numbers reach its logit directly too
    numbers_hook = captured_inputs(wide) if wide is not None else nullcontext([])
    with captured_inputs(net.out) as store, numbers_hook as numbers:
        run()
    x = _stacked(store, len(data.node_ids), f"the {name} model")
    columns = [f"u{i}" for i in range(x.shape[1])]
    if wide is not None and len(x):
        e = _stacked(numbers, len(data.node_ids), f"the {name} model")
        x, columns = np.hstack([x, e]), columns + [f"size{i}" for i in range(e.shape[1])]
    return pd.DataFrame(x, index=pd.Index(data.node_ids, name="node_id"), columns=columns)


def pooled_node_features(model, cohort: Cohort) -> pd.DataFrame:
    """Per patient with scored nodes: the mean and the max of its nodes' hidden features."""
    nodes = node_features(model, cohort)
    if not len(nodes):
        return pd.DataFrame(index=pd.Index([], name="patient_id"))
    owner = cohort.nodes.set_index("node_id")["patient_id"].reindex(nodes.index)
    grouped = nodes.groupby(owner.to_numpy())
    out = pd.concat([grouped.mean().add_prefix("mean_"), grouped.max().add_prefix("max_")], axis=1)
    return out.rename_axis("patient_id")


def cytology_features(model, cohort: Cohort) -> pd.DataFrame:
    """The pooled bag vector of each patient with a cytology bag (what the model's linear head reads)."""
    bags = model.bags(cohort)
    if not len(bags):
        return pd.DataFrame(index=pd.Index([], name="patient_id"))
    with captured_inputs(model.network().head) as store:
        model.attend(bags)
    x = _stacked(store, len(bags.patient_ids), "the cytology model")
    return pd.DataFrame(x, index=pd.Index(bags.patient_ids, name="patient_id"),
                        columns=[f"u{i}" for i in range(x.shape[1])])


def clinical_features(model, cohort: Cohort) -> pd.DataFrame:
    """The clinical model's transformed feature matrix (every patient: missing fields are imputed there)."""
    from ..modalities.clinical_features import feature_frame

    transformer = model.pipeline_["features"]
    x = np.asarray(transformer.transform(feature_frame(cohort, model.features_)), dtype=float)
    return pd.DataFrame(x, index=pd.Index(cohort.patients["patient_id"], name="patient_id"),
                        columns=[f"f{i}" for i in range(x.shape[1])])


def patient_features(model, cohort: Cohort) -> pd.DataFrame:
    """One modality model's patient vectors on `cohort` (patients it has no data for are left out)."""
    if model.name == "clinical":
        return clinical_features(model, cohort)
    if model.name == "cytology":
        return cytology_features(model, cohort)
    if model.level == "node":
        return pooled_node_features(model, cohort)
    raise LymphCastError(f"no patient features for the '{model.name}' model")
