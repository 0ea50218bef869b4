"""Maximum likelihood on the label the environment reports in ``info['label']``
(Kaplan's notes 8.4): L = -sum_y R(y|x) log p(y|x), i.e. cross-entropy for a Discrete action
and, for a Box action, the squared error (the likelihood of a unit-variance Gaussian).

The actions the rollout took and the rewards it saw are ignored: the label is the full signal.
"""

from __future__ import annotations

import torch.nn.functional as F

from rlcore.learner.batches import Batch, concat_fragments, to_batch


def prepare_batch(modules, fragments, cfg, state, rng=None) -> Batch:
    d = concat_fragments(fragments)
    device = next(modules["model"].parameters()).device
    return to_batch({"obs": d["obs"], "label": d["info"]["label"]}, device, flatten=True)


def loss(modules, batch, cfg, state, rng=None):
    net = modules["model"]
    out = net(batch.obs)
    if net.discrete:
        label = batch.label.long()
        nll = F.cross_entropy(out, label, label_smoothing=cfg.label_smoothing)
        accuracy = (out.argmax(-1) == label).float().mean()
        return {"nll": nll}, {"nll": nll.detach(), "accuracy": accuracy.detach()}
    err = (out - batch.label.float().reshape(out.shape)).reshape(len(out), -1)
    mse = err.pow(2).sum(-1).mean()  # the env's reward is minus this per sample
    return {"mse": mse}, {"mse": mse.detach()}
