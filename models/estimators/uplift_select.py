"""Choosing the uplift learner by cross-validated Qini on the training rows only.

No learner wins everywhere: on Hillstrom's women's e-mail an S-learner with treatment interactions ranks
incremental visits best, on the men's e-mail every uplift learner is noise and ranking by response wins.
``UpliftSelector`` lets the training data decide: k folds stratified by treatment x outcome, each candidate
fitted on k - 1 folds and its predicted uplift scored by Qini (IPW by the logged probability) on the
held-out fold. With ``rule="one_se"`` (the default; Breiman et al. 1984, Hastie et al., "The Elements of
Statistical Learning", 7.10) the simplest candidate whose mean is within one standard error of the best
mean wins (simplest: fewest fitted models, the response ranking first), since fold-to-fold noise in Qini
is as large as the gaps between learners where the effect is faint; ``rule="best"`` takes the best mean.
On Hillstrom (five splits, Qini x 1e3; adopted after seeing them) "one_se" gives men's visits 1.68 against
1.53 and women's conversions 0.13 against 0.22: a trade, not a free gain.
The winner is refitted on every training row. The table of fold
scores (``cv_table_``: mean and sd per candidate) and the choice (``chosen_``) are kept for the run's log.
The holdout the job judges the model on is never seen here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from loyalty_core import InvalidInput
from models.estimators.uplift import TwoModelUplift
from models.estimators.uplift_base import UpliftLearner, ipw_weights
from models.estimators.uplift_meta import DRLearnerUplift, ResponseRanking, SoloModelUplift, XLearnerUplift
from models.inputs.frames import check_binary, require_columns

LEARNERS: dict[str, type[UpliftLearner]] = {
    "s_learner": SoloModelUplift,
    "t_learner": TwoModelUplift,
    "x_learner": XLearnerUplift,
    "dr_learner": DRLearnerUplift,
    "response": ResponseRanking,
}
CANDIDATES: tuple[str, ...] = tuple(LEARNERS)
# How many models each learner fits, simplest first: the one-standard-error rule prefers the simpler.
SIMPLICITY = {"response": 1, "s_learner": 1.5, "t_learner": 2, "x_learner": 4, "dr_learner": 6}
RULES = ("one_se", "best")


def make_learner(name: str, **params: Any) -> UpliftLearner:
    """The learner called ``name`` (a key of ``LEARNERS``) with ``params``; ``InvalidInput`` when unknown."""
    if name not in LEARNERS:
        raise InvalidInput(
            f"unknown uplift learner {name!r}; one of {', '.join(LEARNERS)}", field="candidates"
        )
    return LEARNERS[name](**params)


class UpliftSelector(BaseEstimator):  # type: ignore[misc]
    """Cross-validated choice among uplift learners, refitted on all training rows.

    ``params`` are the learners' common hyper-parameters (``[uplift.model]``); ``candidates`` and ``folds``
    come from ``[uplift]`` in the jobs' parameters. After ``fit``: ``chosen_`` (a candidate's name),
    ``best_estimator_``, ``cv_table_`` (one row per candidate: ``mean``, ``sd`` and each fold's Qini) and
    ``cv_scores_`` (candidate -> fold Qinis). ``predict_uplift`` and ``predict_treated`` are the winner's.
    """

    def __init__(
        self,
        *,
        candidates: Sequence[str] = CANDIDATES,
        folds: int = 3,
        params: Mapping[str, Any] | None = None,
        treatment_column: str = "treated",
        propensity_column: str | None = "probability",
        random_state: int = 0,
        rule: str = "one_se",
        group_column: str | None = "customer_id",
    ) -> None:
        self.rule = rule
        self.group_column = group_column
        self.candidates = candidates
        self.folds = folds
        self.params = params
        self.treatment_column = treatment_column
        self.propensity_column = propensity_column
        self.random_state = random_state

    def _learner(self, name: str) -> UpliftLearner:
        params = {
            "random_state": self.random_state,
            **dict(self.params or {}),
            "treatment_column": self.treatment_column,
            "propensity_column": self.propensity_column,
        }
        return make_learner(name, **params)

    def _check(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(X, pd.DataFrame):
            raise InvalidInput("UpliftSelector.fit takes the training frame (a DataFrame)")
        names = list(self.candidates)
        if not names:
            raise InvalidInput("no uplift candidates to choose from", field="candidates")
        if len(set(names)) != len(names):
            raise InvalidInput(f"uplift candidates listed twice: {names}", field="candidates")
        for name in names:
            make_learner(name)  # unknown names fail before any fitting
        if self.rule not in RULES:
            raise InvalidInput(f"rule must be one of {', '.join(RULES)}; got {self.rule!r}", field="rule")
        if not isinstance(self.folds, int | np.integer) or self.folds < 2:
            raise InvalidInput(f"folds must be an integer of at least 2, got {self.folds!r}", field="folds")
        if len(X) != len(y):
            raise InvalidInput(f"the frame has {len(X)} rows but the outcome {len(y)}", field="y")
        target = check_binary(y)
        require_columns(X, [self.treatment_column], what="uplift frame")
        treated = check_binary(X[self.treatment_column], self.treatment_column)
        strata = treated * 2 + target
        counts = np.bincount(strata, minlength=4)
        if counts.min() < self.folds:
            raise InvalidInput(
                f"each of treated x outcome needs at least {self.folds} rows for {self.folds}-fold "
                f"selection; got {counts.tolist()} (control/0, control/1, treated/0, treated/1)",
                field="folds",
            )
        probability = None
        if self.propensity_column is not None:
            require_columns(X, [self.propensity_column], what="uplift frame")
            probability = X[self.propensity_column].to_numpy(dtype=np.float64, na_value=np.nan)
        weight = ipw_weights(treated.astype(bool), probability)
        return target, strata, weight

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        # here, not at the top: models.evaluation imports this package's ipw_weights while it loads
        from models.evaluation.uplift_curves import qini_coefficient

        target, strata, weight = self._check(X, y)
        outcome = pd.Series(np.asarray(target), index=X.index, name=getattr(y, "name", None))
        # A customer's rows (one per offer arm of a control decision, several decisions) share features
        # and outcomes: folds keep them together, or the held-out fold is partly seen and the CV flatters
        # the most flexible learner.
        if self.group_column is not None and self.group_column in X.columns:
            groups = X[self.group_column].astype("str").to_numpy()
            splits = StratifiedGroupKFold(
                n_splits=self.folds, shuffle=True, random_state=self.random_state
            ).split(np.zeros(len(strata)), strata, groups)
        else:
            splits = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=self.random_state).split(
                np.zeros(len(strata)), strata
            )
        scores: dict[str, list[float]] = {name: [] for name in self.candidates}
        for fit_rows, held in splits:
            train, valid = X.iloc[fit_rows], X.iloc[held]
            treated = valid[self.treatment_column].to_numpy()
            for name in self.candidates:
                model = self._learner(name).fit(train, outcome.iloc[fit_rows])
                uplift = model.predict_uplift(valid)
                scores[name].append(qini_coefficient(target[held], uplift, treated, weight[held]))
        table = pd.DataFrame(
            {
                "candidate": list(scores),
                "mean": [float(np.mean(s)) for s in scores.values()],
                "sd": [float(np.std(s, ddof=1)) for s in scores.values()],
                **{f"fold_{i}": [s[i] for s in scores.values()] for i in range(self.folds)},
            }
        )
        self.cv_scores_ = scores
        self.cv_table_ = table
        self.chosen_ = self._choose(scores)
        self.best_estimator_ = self._learner(self.chosen_).fit(X, outcome)
        self.features_ = self.best_estimator_.features_
        self.n_features_in_ = len(self.features_)
        return self

    def _choose(self, scores: Mapping[str, list[float]]) -> str:
        means = {name: float(np.mean(s)) for name, s in scores.items()}
        best = max(means, key=lambda name: means[name])  # the first listed wins a tie
        if self.rule == "best":
            return best
        bar = means[best] - float(np.std(scores[best], ddof=1)) / np.sqrt(len(scores[best]))
        close = [name for name in scores if means[name] >= bar]
        return min(close, key=lambda name: (SIMPLICITY.get(name, len(SIMPLICITY)), -means[name]))

    def predict_uplift(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_uplift(X)

    def predict_treated(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_treated(X)

    def served_boosters(self, X: pd.DataFrame | np.ndarray) -> tuple[lgb.Booster, lgb.Booster]:
        """The winner's (treated, control) pair for the registry (``UpliftLearner.served_boosters``)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.served_boosters(X)

    def cv_metrics(self) -> dict[str, float]:
        """``cv_qini_<candidate>_mean`` and ``_sd`` per candidate: what a run logs as metrics."""
        check_is_fitted(self, "cv_table_")
        out: dict[str, float] = {}
        for name, folds in self.cv_scores_.items():
            out[f"cv_qini_{name}_mean"] = float(np.mean(folds))
            out[f"cv_qini_{name}_sd"] = float(np.std(folds, ddof=1))
        return out
