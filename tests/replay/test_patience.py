"""The patience estimators: Kaplan-Meier on a hand case, Weibull MLE with censoring, conditional draws."""

from __future__ import annotations

import numpy as np
import pytest

from orderbank.replay.patience import estimate, fit_weibull, kaplan_meier


def test_kaplan_meier_hand_case_with_censoring() -> None:
    # waits 1, 2, 2+, 3, 4+, 5 (+ = censored): S(1)=5/6, S(2)=5/6*4/5, S(3)=4/6*2/3, S(5)=0
    days = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    cancelled = np.array([True, True, False, True, False, True])
    km = kaplan_meier(days, cancelled)
    assert km.times.tolist() == [1.0, 2.0, 3.0, 5.0]
    assert km.at_risk.tolist() == [6, 5, 3, 1]
    assert km.surv == pytest.approx([5 / 6, 4 / 6, 4 / 9, 0.0])
    assert km.survival(np.array([0.5, 1.0, 2.5, 4.9, 6.0])) == pytest.approx([1.0, 5 / 6, 4 / 6, 4 / 9, 0.0])


def test_kaplan_meier_draws_respect_the_wait_survived() -> None:
    days = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    km = kaplan_meier(days, np.array([True, True, False, True, False, True]))
    draws = km.draw_beyond(np.full(10_000, 2.5), np.random.default_rng(3))
    assert set(np.unique(draws).tolist()) == {3.0, 5.0}
    # S(3)/S(2.5) = (4/9)/(4/6) = 2/3 survive past 3, so a third cancel at 3
    assert (draws == 3.0).mean() == pytest.approx(1 / 3, abs=0.02)


def test_weibull_fit_recovers_parameters_from_censored_waits() -> None:
    rng = np.random.default_rng(7)
    patience = 300.0 * rng.weibull(1.6, 40_000)
    censor = rng.uniform(0, 400, 40_000)
    days = np.minimum(patience, censor)
    fit = fit_weibull(days, patience <= censor)
    assert fit.shape == pytest.approx(1.6, rel=0.03)
    assert fit.scale == pytest.approx(300.0, rel=0.03)
    waited = np.full(1000, 100.0)
    assert (fit.draw_beyond(waited, rng) >= waited).all()


def test_unknown_estimator_is_refused() -> None:
    with pytest.raises(ValueError, match="patience estimator 'cox'"):
        estimate(np.array([1.0]), np.array([True]), "cox")
