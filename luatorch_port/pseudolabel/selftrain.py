"""Report part 2.4: k-means features + pseudo-labels, as self-training of Coates' L2-SVM.

The two report methods combined: the features are Coates-Lee-Ng's (part 2.2: a k-means
dictionary, triangle encoding, 4-quadrant sum pooling); the pseudo-labels (part 2.3) come
from the classifier trained on them. Round 0 fits the one-vs-all L2-SVM (C = 100) on the
labelled features -- the plain k-means pipeline. Its C is Coates' 100 when given, or with
``C="auto"`` (the default) chosen once on the val split by
:func:`~luatorch_port.kmeans.svm.select_C`, as ``a2 kmeans eval`` does, and kept for every
round (without a val split ``"auto"`` falls back to C = 100). Every later round scores the unlabelled
features with the current SVM, adds the most confident predictions of each class
(``per_class`` of them, class-balanced, optionally above a decision-value ``threshold``)
to the training set with their predicted class as label, and refits the SVM on labelled +
all pseudo-labelled rows. This is classic self-training (Yarowsky 1995; the "incremental"
variant, which never relabels a row once added), the feature-space counterpart of Lee's
Pseudo-Label: an L2-SVM cannot be trained with Lee's per-batch targets, but its one-vs-all
decision values rank examples by confidence.

With C chosen on the val split and ``refit`` (the default), the final SVM is fit once more,
after the last round, on train + val + every pseudo-labelled row at the same C (standardised with their
statistics), as ``a2 kmeans eval --refit`` refits on train + val: 2.4 and its reference,
k-means alone, then learn from the same labelled images. The val accuracy of each round is
measured before that refit (the refit has seen val).

Deviations: none from the description above; the confidence of a row is its largest
one-vs-all decision value (not a probability), so ``threshold`` is in decision-value units
(0 = the winning class's SVM says "yes").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch

from ..util.errors import A2Error
from ..kmeans.svm import C_GRID, COATES_C, L2SVM, Standardizer, select_C
from .select import select_pseudo_labels

DEFAULT_ROUNDS = 5
DEFAULT_ADD_FRACTION = 0.1  # of the unlabelled set per round, split evenly between classes


@dataclass
class SelfTrainConfig:
    """``rounds`` of adding ``per_class`` pseudo-labelled rows per class (default
    ``ceil(add_fraction * n_unlabelled / n_classes)``), class-balanced unless ``balanced``
    is False, each at least ``threshold`` (a decision value) when given; SVM ``C``, a
    positive number or ``"auto"`` (chosen on val once, before round 0); ``refit``: with C
    chosen on val, the final SVM is refit on train + val + the pseudo-labelled rows."""

    rounds: int = DEFAULT_ROUNDS
    per_class: Optional[int] = None
    add_fraction: float = DEFAULT_ADD_FRACTION
    threshold: Optional[float] = None
    balanced: bool = True
    C: float | str = "auto"
    refit: bool = True

    def validate(self) -> "SelfTrainConfig":
        if self.rounds < 0:
            raise A2Error(f"rounds={self.rounds} should be >= 0")
        if self.per_class is not None and self.per_class < 1:
            raise A2Error(f"per_class={self.per_class} should be >= 1")
        if not 0 < self.add_fraction <= 1:
            raise A2Error(f"add_fraction={self.add_fraction} should be in (0, 1]")
        if isinstance(self.C, str):
            if self.C != "auto":
                raise A2Error(f"C={self.C!r} should be a positive number or 'auto'")
        elif not self.C > 0:
            raise A2Error(f"C={self.C} should be > 0")
        return self

    def top_k(self, n_unlabelled: int, n_classes: int) -> int:
        if self.per_class is not None:
            return self.per_class
        return max(1, math.ceil(self.add_fraction * n_unlabelled / n_classes))


@dataclass
class RoundRecord:
    """One round: rows added, their accuracy (nan without true labels), validation accuracy."""

    round: int
    added: int
    total_added: int
    train_size: int
    added_accuracy: float = math.nan
    pseudo_accuracy: float = math.nan   # of every pseudo-label so far
    val_accuracy: float = math.nan
    train_accuracy: float = math.nan    # on the labelled rows only
    svm_iterations: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SelfTrainResult:
    svm: L2SVM
    standardizer: Standardizer
    rounds: list = field(default_factory=list)
    added_indices: torch.Tensor = None   # rows of the unlabelled set, in the order added
    added_labels: torch.Tensor = None    # their 0-based pseudo-labels
    C: float = COATES_C                  # the SVM's C in every round
    c_source: str = "fixed"              # "val": chosen on the val split; "fixed": given or Coates'
    c_curve: list = field(default_factory=list)  # select_C's val curve when chosen on val
    refit: bool = False                  # svm/standardizer were refit on train + val + pseudo-labels


def _accuracy(pred: torch.Tensor, true: Optional[torch.Tensor]) -> float:
    if true is None or pred.numel() == 0:
        return math.nan
    return 100.0 * float((pred == true).float().mean())


def self_train(train_x: torch.Tensor, train_y: torch.Tensor, unlabelled_x: torch.Tensor,
               config: SelfTrainConfig, *, n_classes: int, val=None, unlabelled_y=None,
               svm_factory: Callable = L2SVM, echo=None) -> SelfTrainResult:
    """Self-train an L2-SVM on features.

    Parameters
    ----------
    train_x : float (N, d) labelled features (not standardised); train_y : int64 (N,) 0-based.
    unlabelled_x : float (M, d) features of the unlabelled images.
    config : SelfTrainConfig
    n_classes : int
    val : ``(features (V, d), labels (V,))``, optional -- scored after every round.
    unlabelled_y : int64 (M,), optional
        True labels of the unlabelled rows, used only to report the pseudo-labels' accuracy.
    svm_factory : callable ``(C=) -> estimator`` with fit(x, y, n_classes)/decision_function.
    echo : callable ``(str)``, optional -- one line per round.

    Returns
    -------
    SelfTrainResult; ``rounds[0]`` is the plain supervised pipeline.

    Features are standardised with the labelled rows' statistics (``kmeans_demo.m``:
    ``sqrt(var + 0.01)``), kept for every round.
    """
    config.validate()
    if train_x.dim() != 2 or unlabelled_x.dim() != 2 or train_x.shape[1] != unlabelled_x.shape[1]:
        raise A2Error(f"features should be (N, d) and (M, d), got {tuple(train_x.shape)} and "
                      f"{tuple(unlabelled_x.shape)}")
    if train_y.shape[0] != train_x.shape[0]:
        raise A2Error(f"{train_x.shape[0]} labelled feature rows but {train_y.shape[0]} labels")
    if unlabelled_y is not None and unlabelled_y.shape[0] != unlabelled_x.shape[0]:
        raise A2Error(f"{unlabelled_x.shape[0]} unlabelled rows but {unlabelled_y.shape[0]} true labels")
    C, c_source, curve = config.C, "fixed", []
    if C == "auto":
        if val is not None:
            C, curve, _ = select_C(train_x, train_y, val[0], val[1], C_GRID, n_classes=n_classes)
            c_source = "val"
        else:
            C = COATES_C
    std = Standardizer().fit(train_x)
    tx, ux = std.transform(train_x), std.transform(unlabelled_x)
    vx, vy = (std.transform(val[0]), val[1]) if val is not None else (None, None)
    top_k = config.top_k(ux.shape[0], n_classes)
    added = torch.zeros(ux.shape[0], dtype=torch.bool)
    idx_all = torch.empty(0, dtype=torch.int64)
    lab_all = torch.empty(0, dtype=torch.int64)
    records = []
    svm = None
    for r in range(config.rounds + 1):
        new_idx = torch.empty(0, dtype=torch.int64)
        new_lab = torch.empty(0, dtype=torch.int64)
        if r > 0:
            scores = svm.decision_function(ux).cpu()
            new_idx, new_lab = select_pseudo_labels(scores, threshold=config.threshold,
                                                    top_k=top_k, balanced=config.balanced,
                                                    exclude=added)
            added[new_idx] = True
            idx_all, lab_all = torch.cat([idx_all, new_idx]), torch.cat([lab_all, new_lab])
            if new_idx.numel() > 0 or svm is None:
                x = torch.cat([tx, ux.index_select(0, idx_all)])
                y = torch.cat([train_y, lab_all])
                svm = svm_factory(C=C).fit(x, y, n_classes)
        else:
            svm = svm_factory(C=C).fit(tx, train_y, n_classes)
        true = unlabelled_y
        rec = RoundRecord(
            round=r, added=int(new_idx.numel()), total_added=int(idx_all.numel()),
            train_size=int(tx.shape[0] + idx_all.numel()),
            added_accuracy=_accuracy(new_lab, true[new_idx] if true is not None else None),
            pseudo_accuracy=_accuracy(lab_all, true[idx_all] if true is not None else None),
            val_accuracy=_accuracy(svm.decision_function(vx).argmax(1).cpu(), vy) if vx is not None else math.nan,
            train_accuracy=_accuracy(svm.decision_function(tx).argmax(1).cpu(), train_y),
            svm_iterations=int(getattr(getattr(svm, "info_", None), "iterations", 0)))
        records.append(rec)
        if echo is not None:
            echo(_round_line(rec))
        if r > 0 and new_idx.numel() == 0:
            break  # nothing left that passes the rules: later rounds would repeat this one
    refit = config.refit and c_source == "val"   # as fit_svm: a given C trains on train alone
    if refit:
        x = torch.cat([train_x, val[0], unlabelled_x.index_select(0, idx_all)])
        y = torch.cat([train_y, val[1], lab_all])
        std = Standardizer().fit(x)
        svm = svm_factory(C=C).fit(std.transform(x), y, n_classes)
        if echo is not None:
            echo(f"refit: train + val + {idx_all.numel()} pseudo-labels ({x.shape[0]} rows), C={C:g}")
    return SelfTrainResult(svm=svm, standardizer=std, rounds=records, added_indices=idx_all,
                           added_labels=lab_all, C=float(C), c_source=c_source, c_curve=curve,
                           refit=refit)


def _round_line(rec: RoundRecord) -> str:
    line = (f"round {rec.round}: +{rec.added} pseudo-labels ({rec.total_added} in all, "
            f"train set {rec.train_size})")
    if not math.isnan(rec.added_accuracy):
        line += f"  added {rec.added_accuracy:.2f}% right"
    if not math.isnan(rec.pseudo_accuracy):
        line += f"  all {rec.pseudo_accuracy:.2f}% right"
    if not math.isnan(rec.val_accuracy):
        line += f"  val {rec.val_accuracy:.2f}%"
    return line
