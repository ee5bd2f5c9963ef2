"""One-vs-all L2-SVM (Coates' train_svm.m): gradient check, scikit-learn oracle, standardiser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import check_grad

from luatorch_port.util.errors import A2Error
from luatorch_port.kmeans import fit_classifier
from luatorch_port.kmeans.svm import Classifier
from luatorch_port.kmeans.svm import (COATES_C, STANDARDIZE_VAR_REG, L2SVM, Standardizer,
                               l2svm_loss_flat, l2svm_objective, one_vs_all_targets)


def _data(m=300, d=20, k=4, seed=0, noise=1.5):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (m,), generator=g)
    means = torch.randn(k, d, generator=g)
    x = means[y] + noise * torch.randn(m, d, generator=g)
    return x, y


def test_constants_are_coates():
    assert (COATES_C, STANDARDIZE_VAR_REG) == (100.0, 0.01)


@pytest.mark.parametrize("c, scale", [(100.0, 0.1), (1.0, 1.0), (0.01, 3.0)])
def test_objective_passes_check_grad(c, scale):
    x, y = _data(40, 6, 3)
    yy = one_vs_all_targets(y, 3)
    theta = np.random.default_rng(0).standard_normal(7 * 3) * scale
    f = lambda t: l2svm_loss_flat(t, x, yy, c)[0]
    g = lambda t: l2svm_loss_flat(t, x, yy, c)[1]
    err = check_grad(f, g, theta, epsilon=1e-6)
    assert err <= 1e-5 * max(1.0, np.linalg.norm(g(theta)))


def test_objective_is_train_svm_m():
    # loss = sum(0.5*sum(theta.^2) + C*mean(margin.^2)) with a column of ones for the bias
    x, y = _data(50, 5, 3)
    yy = one_vs_all_targets(y, 3).double().numpy()
    theta = np.random.default_rng(1).standard_normal((6, 3)) * 0.3
    xa = np.hstack([x.double().numpy(), np.ones((50, 1))])
    margin = np.maximum(0, 1 - yy * (xa @ theta))
    loss = np.sum(0.5 * np.sum(theta ** 2, 0) + 100 * np.mean(margin ** 2, 0))
    grad = theta - 2 * 100 / 50 * (xa.T @ (margin * yy))
    t = torch.from_numpy(theta)
    v, gw, gb = l2svm_objective(t[:5], t[5], x.double(), torch.from_numpy(yy), 100.0)
    assert float(v) == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(torch.cat([gw, gb[None]]).numpy(), grad, rtol=1e-10, atol=1e-10)


def test_matches_sklearn_linearsvc():
    from sklearn.svm import LinearSVC
    x, y = _data(200, 12, 3)
    xs = Standardizer().fit_transform(x)
    ours = L2SVM(C=100).fit(xs, y)
    # C multiplies the mean squared hinge, so LinearSVC's C (on the sum) is C / M; liblinear
    # appends intercept_scaling = 1 as a feature and regularises it, like Coates' bias column.
    sk = LinearSVC(C=100 / 200, loss="squared_hinge", dual=False, tol=1e-6, max_iter=2000,
                   intercept_scaling=1.0).fit(xs.numpy(), y.numpy())
    w = torch.cat([ours.coef_, ours.intercept_[None]])
    ws = torch.from_numpy(np.vstack([sk.coef_.T, sk.intercept_[None]])).float()
    assert float((w - ws).norm() / ws.norm()) < 0.02
    agree = (ours.predict(xs) == torch.from_numpy(sk.predict(xs.numpy()))).float().mean()
    assert agree >= 0.99


def test_separable_data_is_fit_exactly():
    x, y = _data(200, 10, 3, noise=0.05)
    svm = L2SVM().fit(Standardizer().fit_transform(x), y)
    assert svm.info_.evaluations > 1
    assert torch.equal(svm.predict(Standardizer().fit(x).transform(x)), y)


def test_standardizer_is_kmeans_demo():
    x, _ = _data(50, 7)
    st = Standardizer().fit(x)
    xn = x.double().numpy()
    expect = (xn - xn.mean(0)) / np.sqrt(xn.var(0, ddof=1) + 0.01)
    np.testing.assert_allclose(st.transform(x).numpy(), expect, rtol=1e-5, atol=1e-5)


def test_classifier_state_round_trip():
    x, y = _data(120, 8, 3)
    clf = fit_classifier(x, y, C=10)
    back = Classifier.from_state_dict(clf.state_dict())
    assert torch.equal(back.predict(x), clf.predict(x))
    assert torch.allclose(back.decision_function(x), clf.decision_function(x))


@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0, 1, 2]), "4 feature rows but 3 labels"),
    (torch.tensor([0, -1, 1, 0]), "labels should be >= 0"),
    (torch.tensor([0, 1, 5, 0]), "label 5 >= n_classes=3"),
])
def test_fit_errors(labels, message):
    with pytest.raises(A2Error, match=message):
        L2SVM().fit(torch.randn(4, 3), labels, n_classes=3 if int(labels.max()) == 5 else None)


def test_bad_c_and_wrong_width():
    with pytest.raises(A2Error, match="C=0 should be > 0"):
        L2SVM(C=0)
    x, y = _data(30, 4, 2)
    svm = L2SVM().fit(x, y)
    with pytest.raises(A2Error, match="5 columns, the SVM was fit on 4"):
        svm.predict(torch.randn(2, 5))


def test_numpy_objective_matches_torch_objective():
    from luatorch_port.kmeans.svm import _l2svm_objective_np
    x, y = _data(60, 9, 4)
    yy = one_vs_all_targets(y, 4)
    theta = np.random.default_rng(2).standard_normal((10, 4)) * 0.2
    t = torch.from_numpy(theta).float()
    v, gw, gb = l2svm_objective(t[:9], t[9], x, yy, 5.0)
    v_np, g_np = _l2svm_objective_np(theta, x.numpy(), yy.double().numpy(), 5.0)
    assert v_np == pytest.approx(float(v), rel=1e-5)
    np.testing.assert_allclose(g_np, torch.cat([gw, gb[None]]).numpy(), rtol=1e-4, atol=1e-4)


def test_lbfgs_minimises_a_quadratic():
    from luatorch_port.kmeans.svm import lbfgs
    a = np.diag(np.arange(1.0, 11.0))
    b = np.arange(10.0)
    x, info = lbfgs(lambda v: (0.5 * v @ a @ v - b @ v, a @ v - b), np.zeros(10), tol_grad=1e-9)
    np.testing.assert_allclose(x, b / np.arange(1.0, 11.0), atol=1e-6)
    assert info.iterations < 50


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_fused_objective_matches_reference(workers):
    # rows not a multiple of ROW_CHUNK, several blocks per worker: same value and gradient
    from luatorch_port.kmeans.svm import ROW_CHUNK, _FusedObjective, _l2svm_objective_np
    x, y = _data(2 * ROW_CHUNK + 37, 9, 4)
    yy = one_vs_all_targets(y, 4)
    theta = np.random.default_rng(3).standard_normal((10, 4)) * 0.2
    obj = _FusedObjective(x.numpy(), yy.numpy(), 7.0, workers)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as pool:
        v, g = obj(theta, pool)
    v_ref, g_ref = _l2svm_objective_np(theta, x.numpy(), yy.double().numpy(), 7.0)
    assert v == pytest.approx(v_ref, rel=1e-6)
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)
    assert obj.evaluations == 1


def test_fit_reaches_the_reference_optimum():
    # the fused objective + L-BFGS reaches the optimum of the plain float64 objective that
    # scipy's L-BFGS-B finds, and predicts the same classes
    from scipy.optimize import minimize
    x, y = _data(300, 15, 4)
    xs = Standardizer().fit_transform(x)
    yy = one_vs_all_targets(y, 4)
    ref = minimize(l2svm_loss_flat, np.zeros(16 * 4), args=(xs, yy, 100.0), jac=True,
                   method="L-BFGS-B", options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-9})
    svm = L2SVM(C=100.0, tol=1e-9).fit(xs, y)
    ours = l2svm_loss_flat(torch.cat([svm.coef_, svm.intercept_[None]]).double().numpy().ravel(),
                           xs, yy, 100.0)[0]
    assert ours == pytest.approx(ref.fun, rel=1e-4)
    t = torch.from_numpy(ref.x.reshape(16, 4)).float()
    assert torch.equal(svm.predict(xs), (xs @ t[:15] + t[15]).argmax(1))


def test_lbfgs_relative_stopping_rule():
    # stops once the mean relative decrease over `window` iterations is under tol_rel;
    # a tighter tol_rel runs longer and ends lower
    from luatorch_port.kmeans.svm import lbfgs
    a = np.diag(np.logspace(0, 3, 40))
    fun = lambda v: (0.5 * v @ a @ v + 1.0, a @ v)   # minimum 1 at 0
    x0 = np.ones(40)
    _, loose = lbfgs(fun, x0, tol_rel=1e-3, window=5, tol_grad=0.0)
    _, tight = lbfgs(fun, x0, tol_rel=1e-8, window=5, tol_grad=0.0)
    assert 5 < loose.iterations < tight.iterations < 1000
    assert 1.0 <= tight.objective < loose.objective
    assert tight.objective - 1.0 < 1e-6


def test_fused_objective_is_independent_of_worker_count():
    from concurrent.futures import ThreadPoolExecutor

    from luatorch_port.kmeans.svm import ROW_CHUNK, _FusedObjective
    x, y = _data(3 * ROW_CHUNK + 5, 7, 3)
    yy = one_vs_all_targets(y, 3).numpy()
    theta = np.random.default_rng(4).standard_normal((8, 3)) * 0.3
    results = []
    for workers in (1, 2, 4):
        with ThreadPoolExecutor(workers) as pool:
            results.append(_FusedObjective(x.numpy(), yy, 3.0, workers)(theta, pool))
    for v, g in results[1:]:
        assert v == results[0][0]
        assert np.array_equal(g, results[0][1])


def test_default_fit_reaches_linearsvc_objective():
    # default stopping rule (tol 1e-5): the objective within 1e-3 of LinearSVC's converged
    # one (dual coordinate descent, as in the benchmark), the same test predictions
    from sklearn.svm import LinearSVC

    from luatorch_port.kmeans.svm import _l2svm_objective_np
    xa, ya = _data(600, 30, 5, seed=3, noise=2.5)
    x, y, xt = xa[:400], ya[:400], xa[400:]
    st = Standardizer().fit(x)
    xs, xts = st.transform(x), st.transform(xt)
    ours = L2SVM(C=100.0).fit(xs, y)
    sk = LinearSVC(C=100.0 / 400, loss="squared_hinge", dual=True, tol=1e-6,
                   max_iter=20000).fit(xs.numpy(), y.numpy())
    yy = one_vs_all_targets(y, 5).double().numpy()
    f_ours = _l2svm_objective_np(torch.cat([ours.coef_, ours.intercept_[None]]).double().numpy(),
                                 xs.numpy(), yy, 100.0)[0]
    f_sk = _l2svm_objective_np(np.vstack([sk.coef_.T, sk.intercept_[None]]), xs.numpy(), yy, 100.0)[0]
    assert f_ours == pytest.approx(f_sk, rel=1e-3)
    agree = (ours.predict(xts).numpy() == sk.predict(xts.numpy())).mean()
    assert agree >= 0.99


# --- choosing C on a validation split ----------------------------------------------------

def _overfit_data(seed=0):
    """More features than training rows and heavy noise: large C overfits, small C underfits."""
    x, y = _data(360, 120, 4, seed=seed, noise=4.0)
    return x[:160], y[:160], x[160:], y[160:]


def test_c_grid_is_log_spaced_up_to_coates():
    from luatorch_port.kmeans.svm import C_GRID
    assert C_GRID[-1] == COATES_C and C_GRID[0] == 0.1
    ratios = np.diff(np.log10(C_GRID))
    assert np.all(ratios > 0.45) and np.all(ratios < 0.55)


def test_select_c_curve():
    from luatorch_port.kmeans.svm import C_GRID, accuracy, select_C
    xtr, ytr, xval, yval = _overfit_data()
    seen = []
    best, curve, clf = select_C(xtr, ytr, xval, yval, on_fit=seen.append)
    assert [p["C"] for p in curve] == sorted(C_GRID) and seen == curve
    assert set(curve[0]) == {"C", "train_accuracy", "val_accuracy", "objective", "evaluations",
                             "seconds"}
    # more C, less regularisation: the training fit only improves, to exact at Coates' C
    assert curve[-1]["train_accuracy"] == 1.0
    assert curve[-1]["train_accuracy"] > curve[0]["train_accuracy"]
    # the point of the grid: here the best validation accuracy is not at Coates' C
    top = max(p["val_accuracy"] for p in curve)
    assert top > curve[-1]["val_accuracy"] and best < COATES_C
    assert best == max(p["C"] for p in curve if p["val_accuracy"] == top)
    assert clf.svm.C == best
    assert accuracy(clf.predict(xval), yval) == pytest.approx(top)


def test_select_c_warm_start_equals_cold_start():
    from luatorch_port.kmeans.svm import select_C
    xtr, ytr, xval, yval = _overfit_data(1)
    _, curve, _ = select_C(xtr, ytr, xval, yval, grid=(0.3, 3.0, 30.0), tol=1e-7)
    xs = Standardizer().fit(xtr).transform(xtr)
    for p in curve:
        cold = L2SVM(C=p["C"], tol=1e-7).fit(xs, ytr)
        assert p["objective"] == pytest.approx(cold.info_.objective, rel=1e-4)
    # and the warm starts save work: the last C of the grid starts near its optimum
    assert curve[-1]["evaluations"] < L2SVM(C=30.0, tol=1e-7).fit(xs, ytr).info_.evaluations


def test_select_c_ties_go_to_the_larger_c():
    from luatorch_port.kmeans.svm import select_C
    x, y = _data(120, 6, 3, noise=0.05)       # separable: every C scores 100 % on val
    best, curve, _ = select_C(x[:80], y[:80], x[80:], y[80:], grid=(10.0, 0.1, 1.0))
    assert [p["val_accuracy"] for p in curve] == [1.0, 1.0, 1.0]
    assert best == 10.0


def test_warm_start_shape_is_checked():
    x, y = _data(60, 5, 3)
    small = L2SVM(C=1).fit(x[:, :4], y)
    with pytest.raises(A2Error, match=r"warm start is a \(4, 3\) SVM, expected \(5, 3\)"):
        L2SVM(C=1).fit(x, y, init=small)


@pytest.mark.parametrize("grid, message", [((), "grid is empty"), ((0.0, 1.0), "should be > 0")])
def test_select_c_bad_grid(grid, message):
    from luatorch_port.kmeans.svm import select_C
    x, y = _data(60, 5, 3)
    with pytest.raises(A2Error, match=message):
        select_C(x[:40], y[:40], x[40:], y[40:], grid=grid)


# --- the row-span solver (rows <= features) ----------------------------------------------

def _wide_data(seed=0):
    """Fewer rows than features, noisy: the regime of 4,000 images x 6,400 k-means features."""
    x, y = _data(240, 300, 4, seed=seed, noise=3.0)
    return x[:150], y[:150], x[150:], y[150:]


def _primal_objective(svm, xs, y, c):
    from luatorch_port.kmeans.svm import _l2svm_objective_np
    yy = one_vs_all_targets(y, int(y.max()) + 1).double().numpy()
    theta = torch.cat([svm.coef_, svm.intercept_[None]]).double().numpy()
    return _l2svm_objective_np(theta, xs.numpy(), yy, c)[0]


@pytest.mark.parametrize("m, d, expect", [(4000, 6400, True), (6401, 6400, True),
                                          (6402, 6400, False), (20_000, 30_000, False),
                                          (300, 20, False)])
def test_auto_solver_rule(m, d, expect):
    from luatorch_port.kmeans.svm import use_span
    assert use_span(m, d) is expect


@pytest.mark.parametrize("c", [0.1, 3.0, 100.0])
def test_span_solver_reaches_the_features_optimum(c):
    # the same problem in M variables per class: the same optimum (objective of the primal
    # weights on the original features) and the same predictions, train and held out
    xtr, ytr, xte, _ = _wide_data()
    st = Standardizer().fit(xtr)
    xs, xts = st.transform(xtr), st.transform(xte)
    span = L2SVM(C=c, tol=1e-8, solver="span").fit(xs, ytr)
    feat = L2SVM(C=c, tol=1e-8, solver="features").fit(xs, ytr)
    assert (span.solver_, feat.solver_) == ("span", "features")
    assert L2SVM(C=c).fit(xs, ytr).solver_ == "span"          # auto: 150 rows <= 300 features
    f_span, f_feat = _primal_objective(span, xs, ytr, c), _primal_objective(feat, xs, ytr, c)
    assert f_span == pytest.approx(f_feat, rel=1e-5)
    assert torch.equal(span.predict(xs), feat.predict(xs))
    assert torch.equal(span.predict(xts), feat.predict(xts))


def test_span_solver_matches_sklearn_linearsvc():
    from sklearn.svm import LinearSVC
    xtr, ytr, _, _ = _wide_data(2)
    xs = Standardizer().fit_transform(xtr)
    ours = L2SVM(C=10.0, tol=1e-8, solver="span").fit(xs, ytr)
    sk = LinearSVC(C=10.0 / 150, loss="squared_hinge", dual=True, tol=1e-8, max_iter=100_000,
                   intercept_scaling=1.0).fit(xs.numpy(), ytr.numpy())
    w = torch.cat([ours.coef_, ours.intercept_[None]])
    ws = torch.from_numpy(np.vstack([sk.coef_.T, sk.intercept_[None]])).float()
    assert float((w - ws).norm() / ws.norm()) < 1e-3
    assert torch.equal(ours.predict(xs), torch.from_numpy(sk.predict(xs.numpy())))


def test_row_span_maps_are_an_isometry():
    from luatorch_port.kmeans.svm import RowSpan
    xtr, _, _, _ = _wide_data(3)
    xs = Standardizer().fit_transform(xtr)
    span = RowSpan(xs)
    xa = torch.cat([xs, torch.ones(xs.shape[0], 1)], 1).double()
    gram = xa @ xa.t()
    assert torch.allclose(span.factor @ span.factor.t(), gram, rtol=1e-4, atol=1e-2)
    a = torch.randn(xs.shape[0], 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theta = xa.t() @ a                                       # a point of the span
    coords = span.coords(theta[:-1].float(), theta[-1].float())
    # same scores, same norm, and back again
    assert torch.allclose(span.factor @ coords, xa @ theta, rtol=1e-4, atol=1e-2)
    assert torch.allclose(coords.norm(dim=0), theta.norm(dim=0), rtol=1e-4)
    w, b = span.weights(coords)
    assert torch.allclose(torch.cat([w, b[None]]).double(), theta, rtol=1e-3, atol=1e-3)


def test_fused_objective_on_the_triangular_factor_matches_reference():
    from concurrent.futures import ThreadPoolExecutor

    from luatorch_port.kmeans.svm import ROW_CHUNK, _FusedObjective, _l2svm_objective_np
    m = 2 * ROW_CHUNK + 11
    g = torch.Generator().manual_seed(5)
    low = torch.tril(torch.randn(m, m, generator=g)).numpy()
    yy = one_vs_all_targets(torch.randint(0, 3, (m,), generator=g), 3)
    theta = np.random.default_rng(6).standard_normal((m, 3)) * 0.05
    with ThreadPoolExecutor(2) as pool:
        v, grad = _FusedObjective(low, yy.numpy(), 4.0, 2, lower_triangular=True, bias=False)(theta, pool)
    # the reference with a bias row held at zero, its gradient row dropped
    v_ref, g_ref = _l2svm_objective_np(np.vstack([theta, np.zeros((1, 3))]), low,
                                       yy.double().numpy(), 4.0)
    assert v == pytest.approx(v_ref, rel=1e-6)
    np.testing.assert_allclose(grad, g_ref[:m], rtol=1e-4, atol=1e-4)


def test_dependent_rows_fall_back_to_the_features():
    xtr, ytr, _, _ = _wide_data(4)
    x = torch.cat([xtr, xtr[:5]])                 # repeated images: the Gram is singular
    y = torch.cat([ytr, ytr[:5]])
    xs = Standardizer().fit_transform(x)
    assert L2SVM(C=1.0).fit(xs, y).solver_ == "features"
    with pytest.raises(A2Error, match="singular"):
        L2SVM(C=1.0, solver="span").fit(xs, y)
    with pytest.raises(A2Error, match="solver should be one of"):
        L2SVM(solver="newton")


def test_select_c_in_the_span_equals_cold_fits_on_the_features():
    from luatorch_port.kmeans.svm import select_C
    xtr, ytr, xval, yval = _wide_data(5)
    best, curve, clf = select_C(xtr, ytr, xval, yval, grid=(0.3, 3.0, 30.0), tol=1e-8)
    assert clf.svm.solver_ == "span"
    xs = Standardizer().fit(xtr).transform(xtr)
    for p in curve:
        cold = L2SVM(C=p["C"], tol=1e-8, solver="features").fit(xs, ytr)
        assert p["objective"] == pytest.approx(_primal_objective(cold, xs, ytr, p["C"]), rel=1e-5)
    _, curve_f, clf_f = select_C(xtr, ytr, xval, yval, grid=(0.3, 3.0, 30.0), tol=1e-8,
                                 solver="features")
    assert [p["val_accuracy"] for p in curve] == [p["val_accuracy"] for p in curve_f]
    assert torch.equal(clf.predict(xval), clf_f.predict(xval))


def test_row_span_extend_is_the_span_of_all_rows():
    from luatorch_port.kmeans.svm import RowSpan
    xtr, _, xval, _ = _wide_data(6)
    st = Standardizer().fit(xtr)
    a, b = st.transform(xtr), st.transform(xval)
    grown, whole = RowSpan(a).extend(b), RowSpan(torch.cat([a, b]))
    assert torch.equal(grown.x, whole.x)
    assert torch.allclose(grown.factor, whole.factor, rtol=1e-6, atol=1e-6)


def test_refit_grows_the_grid_span_and_reaches_the_optimum():
    # the refit on train + val keeps the training standardiser (the grid's Gram grows by
    # the val rows) and lands on the optimum of that problem
    from luatorch_port.kmeans.svm import fit_svm
    xtr, ytr, xval, yval = _wide_data(7)
    fit = fit_svm(xtr, ytr, xval, yval, C="auto", grid=(0.3, 3.0, 30.0), solver="span")
    st = Standardizer().fit(xtr)
    assert torch.equal(fit.classifier.standardizer.mean_, st.mean_)
    assert fit.classifier.svm.solver_ == "span" and fit.refit
    x, y = st.transform(torch.cat([xtr, xval])), torch.cat([ytr, yval])
    cold = L2SVM(C=fit.C, tol=1e-9, solver="features").fit(x, y)
    assert _primal_objective(fit.classifier.svm, x, y, fit.C) == pytest.approx(
        _primal_objective(cold, x, y, fit.C), rel=1e-4)
    assert torch.equal(fit.classifier.svm.predict(x), cold.predict(x))


@pytest.mark.parametrize("evaluations, expect", [(10, False), (60, False), (150, True), (400, True)])
def test_refit_in_span_rule(evaluations, expect):
    # 4,000 + 1,000 rows, 6,400 features, 10 classes: the border pays after ~100 evaluations
    from luatorch_port.kmeans.svm import refit_in_span
    assert refit_in_span(4000, 1000, 6400, 10, evaluations) is expect
    assert refit_in_span(6000, 1000, 6400, 10, evaluations) is False     # 7,000 rows > features


def test_cheap_refit_runs_on_the_features():
    from luatorch_port.kmeans.svm import fit_svm
    xtr, ytr, xval, yval = _wide_data(8)
    from luatorch_port.kmeans.svm import refit_in_span
    fit = fit_svm(xtr, ytr, xval, yval, C="auto", grid=(0.1,))      # a few evaluations
    assert fit.curve[0]["evaluations"] > 0
    assert not refit_in_span(150, 90, 300, 4, fit.curve[0]["evaluations"])
    assert fit.classifier.svm.solver_ == "features"
