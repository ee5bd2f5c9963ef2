"""Port of the classification half of Coates' ``kmeans_demo.m``: features -> standardise -> L2-SVM.

``fit_classifier`` standardises training features and fits the one-vs-all L2-SVM;
``evaluate`` encodes a labelled training split and a test split with a fitted
:class:`~luatorch_port.kmeans.coates.CoatesKMeans`, trains, and scores both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..util.errors import A2Error
from .svm import COATES_C, L2SVM, Standardizer

# Largest --image-size images are resized to: 512 is over 5x the STL-10 side (96); every
# image of --data is held resized, so 100000 would ask for terabytes (issue 19).
MAX_IMAGE_SIZE = 512


@dataclass
class Classifier:
    """A standardiser and an L2-SVM fit together; ``predict``/``decision_function`` on raw features."""

    standardizer: Standardizer
    svm: L2SVM

    def decision_function(self, features: torch.Tensor) -> torch.Tensor:
        return self.svm.decision_function(self.standardizer.transform(features))

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.decision_function(features).argmax(1)

    def state_dict(self) -> dict:
        """Lua table: ``{W, b, C, mean, sd}`` (scores = ((x − mean) / sd) · W + b)."""
        state = self.svm.state_dict()
        state.update({"mean": self.standardizer.mean_.cpu(), "sd": self.standardizer.sd_.cpu()})
        return state

    @classmethod
    def from_state_dict(cls, state: dict) -> "Classifier":
        for key in ("W", "b", "mean", "sd"):
            if key not in state:
                raise A2Error(f"SVM table is missing field '{key}'")
        st = Standardizer()
        st.mean_, st.sd_ = torch.as_tensor(state["mean"]).float(), torch.as_tensor(state["sd"]).float()
        return cls(st, L2SVM.from_state_dict(state))


def fit_classifier(features: torch.Tensor, labels: torch.Tensor, C: float = COATES_C,
                   n_classes: int | None = None, **svm_options) -> Classifier:
    """Standardise (mean, sqrt(var + 0.01)) and fit the L2-SVM; see :class:`L2SVM`."""
    st = Standardizer().fit(features)
    svm = L2SVM(C=C, **svm_options).fit(st.transform(features), labels, n_classes=n_classes)
    return Classifier(st, svm)


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: accuracies (0..1), test predictions, fitted classifier, seconds."""

    train_accuracy: float
    test_accuracy: float | None
    test_predictions: torch.Tensor
    classifier: Classifier
    seconds: dict = field(default_factory=dict)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred.cpu() == labels.cpu()).float().mean())


def evaluate(model, train_images: torch.Tensor, train_labels: torch.Tensor,
             test_images: torch.Tensor, test_labels: torch.Tensor | None = None, *,
             C: float = COATES_C, n_classes: int | None = None, device="cpu",
             on_images=None) -> Evaluation:
    """Encode both splits with ``model`` (a fitted CoatesKMeans), fit, predict, score.

    on_images(n) is called as images are encoded (train first, then test).
    """
    if train_labels is None:
        raise A2Error("the training split has no labels (an extra-layout file?)")
    seconds = {}
    t = time.perf_counter()
    train_x = model.transform(train_images, device=device, progress=on_images)
    test_x = model.transform(test_images, device=device, progress=on_images)
    seconds["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    clf = fit_classifier(train_x, train_labels, C=C, n_classes=n_classes)
    seconds["svm"] = time.perf_counter() - t
    train_acc = accuracy(clf.predict(train_x), train_labels)
    pred = clf.predict(test_x).cpu()
    test_acc = None if test_labels is None else accuracy(pred, test_labels)
    return Evaluation(train_acc, test_acc, pred, clf, seconds)
