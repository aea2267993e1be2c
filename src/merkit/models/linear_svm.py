"""A classic baseline: a linear support-vector machine on the flattened onset->apex flow image.

Cortes and Vapnik, "Support-vector networks", Machine Learning 20 (1995) 273-297; fitted with scikit-learn's
:class:`sklearn.svm.LinearSVC` (liblinear: squared hinge loss, L2 penalty, one-vs-rest for more than two classes),
solved in the primal (``dual=False``): on one composite fold (439 rows, 2352 features) it converged in 42
iterations (about 2 s), where the dual took 5706 iterations (about 22 s) for the same problem.
The MEB toolbox reports an optical-flow SVM close to its deep networks on cross-dataset AU detection
(``experiments/benchmarks/Constant, LBPTOP, MDMO and OF + SVM.ipynb`` at f731b0a: ``SVC(C=28)``, an RBF kernel, on
32 x 32 flows); merkit's baseline is linear, so that its decision function is one matrix product that a checkpoint
stores and ``merkit predict`` runs like any other model.

Features: ``flow`` (B, C, H, W), resized to ``input_size`` when it has another size, flattened to C * H * W values
in [0, 1]; no standardisation (every feature already lies in [0, 1]).

Training is a closed-form fit, not gradient descent: the class declares ``closed_form = True`` and
:func:`merkit.training.engine.fit` calls :meth:`LinearSVM.fit_closed_form` once on the training rows (no batches,
no optimiser, no augmentation); the same LOSO runner, inner selection and predictions table serve it as every other
model, and nothing in the runner knows the model's name.

Class probabilities: the softmax of the SVM's decision values (``predict_proba`` applies a softmax to the model's
output, which is the vector of decision values). Their argmax is the SVM's own prediction (liblinear predicts the
largest decision value); they are not calibrated (Platt scaling would need a further split of the training fold).
With two classes present, the single decision value d is split as (-d/2, +d/2), so the probability of the positive
class is sigmoid(d). A class absent from a training fold gets decision value -inf, so probability 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from merkit.models.base import MerModel, register_model
from merkit.models.layers import resize


@dataclass(frozen=True)
class Config:
    in_channels: int = 3
    input_size: int = 28
    C: float = 1.0
    max_iter: int = 10000


PRESETS: dict[str, Config] = {
    "paper": Config(),  # scikit-learn's defaults (C = 1, squared hinge), solved in the primal
    "cpu": Config(),
}


@register_model("linear_svm", presets=PRESETS, title="Flow + linear SVM",
                paper="Cortes and Vapnik, \"Support-vector networks\", Machine Learning 20 (1995) 273-297; "
                      "scikit-learn LinearSVC on the flattened flow image")
class LinearSVM(MerModel):
    """A linear SVM on ``{"flow": (B, C, H, W) float32}``; output (B, num_classes): the decision values.

    The weights are buffers (``weight`` (num_classes, C * H * W), ``bias`` (num_classes,), float32), set by
    :meth:`fit_closed_form`; before the fit every decision value is 0.
    """

    input_keys = ("flow",)
    #: trained by :meth:`fit_closed_form`, not by gradient steps (read by :func:`merkit.training.engine.fit`)
    closed_form = True

    def __init__(self, num_classes: int, config: Config = Config()):
        super().__init__()
        self.config = config
        dim = config.in_channels * config.input_size * config.input_size
        self.register_buffer("weight", torch.zeros(num_classes, dim))
        self.register_buffer("bias", torch.zeros(num_classes))

    def forward_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, C, H, W) flow -> (B, C * input_size**2) flattened features.

        Raises:
            ValueError: the flow has another channel count than ``in_channels``.
        """
        x = inputs["flow"]
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"the linear SVM takes a flow of {self.config.in_channels} channels, got shape "
                             f"{tuple(x.shape)}; set model.params.in_channels to the data's channel count")
        return resize(x, self.config.input_size).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T + self.bias

    def fit_closed_form(self, inputs: Mapping[str, torch.Tensor], labels: torch.Tensor, seed: int) -> None:
        """Fit :class:`sklearn.svm.LinearSVC` on ``inputs`` (every training row) and ``labels`` ((N,) int64) and
        store its decision function in ``weight`` and ``bias``.

        Args:
            seed: liblinear's random state, from the unit's generator (the primal solver does not draw from it;
                it is passed so that a change of solver stays reproducible).

        Raises:
            ValueError: the labels hold fewer than two classes (scikit-learn's message).
        """
        from sklearn.svm import LinearSVC

        with torch.no_grad():
            features = self.forward_features(inputs).double().cpu().numpy()
        y = labels.cpu().numpy()
        svm = LinearSVC(C=self.config.C, dual=False, max_iter=self.config.max_iter, random_state=seed % (2 ** 31))
        svm.fit(features, y)
        classes = svm.classes_.astype(np.int64)
        weight = torch.zeros_like(self.weight, dtype=torch.float64)
        bias = torch.full_like(self.bias, float("-inf"), dtype=torch.float64)
        coef, intercept = torch.from_numpy(svm.coef_), torch.from_numpy(svm.intercept_)
        if len(classes) == 2:  # one decision value d > 0 for classes[1]: logits (-d/2, d/2)
            coef, intercept = torch.cat([-coef, coef]) / 2, torch.cat([-intercept, intercept]) / 2
        weight[classes], bias[classes] = coef, intercept
        self.weight.copy_(weight.to(self.weight.dtype))
        self.bias.copy_(bias.to(self.bias.dtype))
