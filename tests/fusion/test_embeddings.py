"""The feature hooks of intermediate fusion on the CT and cine-clip networks (untrained, on made-up inputs): the
features read are the very ones the node logit is computed from, batch after batch, pooled per patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lymphcast.cohort import LymphCastError
from lymphcast.fusion import embeddings


def _fitted(model):
    model.state_dict_ = model._new_net().state_dict()
    return model


def _check_hook(model, data, run):
    feats = embeddings.node_features(model, cohort=None)
    assert feats.index.tolist() == list(data.node_ids) and feats.shape[1] > 0
    net = model.network()
    hidden = torch.tensor(feats.filter(regex=r"^u\d+$").to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        again = net.out(hidden).squeeze(-1)
        if hasattr(net, "size_logit"):  # the clip network adds its standardised size numbers' linear term
            numbers = torch.tensor(feats.filter(regex=r"^size\d+$").to_numpy(), dtype=torch.float32)
            assert numbers.shape[1] == net.size_logit.in_features
            again = again + net.size_logit(numbers).squeeze(-1)
        again = again.numpy()
    np.testing.assert_allclose(again, run(), atol=1e-4)


def test_ct_hook_reads_the_last_hidden_layer(monkeypatch):
    from lymphcast.modalities.ct import CtModel
    from lymphcast.modalities.ct_crops import Crops

    rng = np.random.default_rng(0)
    n = 70  # more than one of the model's batches of 64
    crops = Crops(pd.Index([f"n{i}" for i in range(n)]), rng.normal(40, 60, (n, 2, 16, 16, 16)).astype(np.float16),
                  np.column_stack([np.ones(n, bool), rng.random(n) < 0.5]))
    model = _fitted(CtModel(size=16, channels=(4, 8), progress=False))
    monkeypatch.setattr(model, "crops", lambda cohort: crops)
    _check_hook(model, crops, lambda: model._logits(crops))


def test_clip_hook_reads_the_last_hidden_layer(monkeypatch):
    from lymphcast.modalities.us_video import UsVideoModel
    from lymphcast.modalities.us_video_clips import CLIP_EXTRA, SCALES, Clips

    rng = np.random.default_rng(1)
    n, t = 5, 3
    clips = Clips(pd.Index([f"v{i}" for i in range(n)]), rng.integers(0, 255, (n, t, SCALES, 16, 16), dtype=np.uint8),
                  rng.normal(size=(n, CLIP_EXTRA)).astype(np.float32), np.tile(np.arange(t), (n, 1)))
    model = _fitted(UsVideoModel(frames=t, size=16, channels=(4, 8), progress=False))
    monkeypatch.setattr(model, "_clips", lambda cohort: clips)
    _check_hook(model, clips, lambda: model._run(clips)[0])


def test_mirrored_passes_are_averaged_and_odd_batching_refused():
    a, b = np.ones((2, 3)), 3 * np.ones((2, 3))
    np.testing.assert_allclose(embeddings._stacked([a, b], 2, "x"), 2 * np.ones((2, 3)))
    with pytest.raises(LymphCastError, match="read for 3 rows"):
        embeddings._stacked([a, np.ones((1, 3))], 2, "x")


def test_pooling_is_mean_and_max_per_patient(monkeypatch):
    nodes = pd.DataFrame({"u0": [1.0, 3.0, 5.0]}, index=pd.Index(["a1", "a2", "b1"], name="node_id"))
    monkeypatch.setattr(embeddings, "node_features", lambda model, cohort: nodes)
    cohort = type("C", (), {"nodes": pd.DataFrame({"node_id": ["a1", "a2", "b1"], "patient_id": ["A", "A", "B"]})})
    pooled = embeddings.pooled_node_features(None, cohort)
    assert pooled.loc["A"].tolist() == [2.0, 3.0] and pooled.loc["B"].tolist() == [5.0, 5.0]
    assert list(pooled.columns) == ["mean_u0", "max_u0"]
