"""Our IPS / SNIPS / DR on the Open Bandit Dataset (OBD) sample, beside Open Bandit Pipeline's (README).

The OBP paper's validation: ZOZOTOWN logged the same campaign under a uniform Random policy and under
Bernoulli Thompson Sampling (BTS). BTS's value (its click rate) is estimated off-policy from the Random log
with ``models``' estimators, and checked against BTS's on-policy value, the mean click of its own log (with
a 95 % Wald interval). As in obp's ``OpenBanditDataset.obtain_batch_bandit_feedback`` every row of every
position (3 slots) is used: the candidate's probability of a logged row is BTS's probability of that item at
that row's position, ``action_dist[item, position]``.

BTS's action distribution is obp's ``BernoulliTS(n_actions, len_list=3, is_zozotown_prior=True, campaign,
random_state=12345).compute_batch_action_dist(n_sim=100000)``. When obp is importable it is called (and the
benchmark's own reproduction is checked against it); otherwise the reproduction is used: the same Monte-Carlo
with the production Beta priors (obp 0.5.7's ``obp/policy/conf/prior_bts.yaml``, copied below) and the same
``RandomState(12345)`` stream, drawn in one call instead of 100,000.

DR's reward model is a cross-fitted (3 folds) L2 logistic regression of the click on the user features
(one-hot, as obp's ``pre_process``), the item and the position; the same predictions are given to obp's DR,
so any difference is the estimators' arithmetic. Timings are the median of ``--repeat`` calls of each
estimator on inputs already in memory: both get the same ``(n, items, positions)`` arrays (ours includes
picking the per-row terms out of them, and also computes a standard error; obp's includes its input checks).

The data is never downloaded here. obp 0.5.7's source archive bundles the sample:

    pip download --no-deps --no-binary :all: --ignore-requires-python obp==0.5.7 -d DIR
    python benchmarks/obd_ope.py --data DIR/obp-0.5.7.tar.gz [--campaign all|men|women] [--json]

``--data`` is that archive (read in place) or an unpacked ``obd`` folder (``{random,bts}/{campaign}/*.csv``).
obp itself declares Python < 3.11; for the side-by-side run this in a virtualenv with the platform and
``pip install --no-deps --ignore-requires-python obp==0.5.7`` plus what obp imports (see README).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from models import doubly_robust, ips, snips

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "obd" / "obp-0.5.7.tar.gz"
DOWNLOAD = "pip download --no-deps --no-binary :all: --ignore-requires-python obp==0.5.7 -d DIR"
CAMPAIGNS = ("all", "men", "women")
LEN_LIST = 3
Z95 = 1.959963984540054

# obp 0.5.7, obp/policy/conf/prior_bts.yaml (Apache-2.0): the Beta priors of ZOZOTOWN's production BTS.
# fmt: off
ZOZOTOWN_PRIOR: dict[str, dict[str, tuple[int, ...]]] = {
    "all": {
        "alpha": (
            47, 8, 62, 142, 3, 14, 7, 857, 12, 15, 6, 100, 48, 23, 71, 61, 13, 16, 518, 30, 7, 4, 23, 8, 10,
            11, 11, 18, 121, 11, 11, 10, 14, 9, 204, 58, 3, 19, 42, 1013, 2, 328, 15, 31, 14, 138, 45, 55,
            23, 38, 10, 401, 52, 6, 3, 6, 5, 32, 35, 133, 52, 820, 43, 195, 8, 42, 40, 4, 32, 30, 9, 22, 6,
            23, 5, 54, 8, 22, 65, 246,
        ),
        "beta": (
            12198, 3566, 15993, 35522, 2367, 4609, 3171, 181745, 4372, 4951, 3100, 24665, 13210, 7061,
            18061, 17449, 5644, 6787, 111326, 8776, 3334, 2271, 7389, 2659, 3665, 4724, 3561, 5085, 27407,
            4601, 4756, 4120, 4736, 3788, 45292, 14719, 2189, 5589, 11995, 222255, 2308, 70034, 4801, 8274,
            5421, 31912, 12213, 13576, 6230, 10382, 4141, 85731, 12811, 2707, 2250, 2668, 2886, 9581, 9465,
            28336, 12062, 162793, 12107, 41240, 3162, 11604, 10818, 2923, 8897, 8654, 4000, 6580, 3174,
            6766, 2602, 14506, 3968, 7523, 16532, 51964,
        ),
    },
    "men": {
        "alpha": (
            47, 8, 62, 142, 3, 6, 100, 48, 23, 71, 61, 13, 16, 518, 30, 7, 4, 23, 8, 10, 11, 11, 18, 121,
            11, 4, 32, 30, 9, 22, 6, 23, 5, 54,
        ),
        "beta": (
            12198, 3566, 15993, 35522, 2367, 3100, 24665, 13210, 7061, 18061, 17449, 5644, 6787, 111326,
            8776, 3334, 2271, 7389, 2659, 3665, 4724, 3561, 5085, 27407, 4601, 2923, 8897, 8654, 4000, 6580,
            3174, 6766, 2602, 14506,
        ),
    },
    "women": {
        "alpha": (
            12, 7, 984, 13, 15, 15, 11, 14, 9, 200, 72, 3, 14, 49, 1278, 3, 325, 14, 27, 14, 169, 48, 47,
            18, 40, 12, 447, 46, 5, 3, 5, 7, 35, 34, 99, 30, 880, 51, 182, 6, 45, 39, 10, 24, 72, 229,
        ),
        "beta": (
            3612, 3173, 204484, 4517, 4765, 5331, 4131, 4728, 4028, 44280, 17918, 2309, 4339, 12922, 270771,
            2480, 68475, 5129, 7367, 5819, 38026, 13047, 11604, 5394, 10912, 4439, 94485, 10700, 2679, 2319,
            2578, 3288, 9566, 9775, 20120, 7317, 172026, 13673, 37329, 3365, 10911, 10734, 4278, 7574,
            16826, 47462,
        ),
    },
}
# fmt: on


class DataMissing(Exception):
    pass


@dataclass(frozen=True)
class Feedback:
    """A logged policy's rows, as obp's ``obtain_batch_bandit_feedback`` gives them (sorted by timestamp)."""

    action: np.ndarray  # item_id
    position: np.ndarray  # 0, 1, 2: the dense rank of the raw position
    reward: np.ndarray  # click
    pscore: np.ndarray  # the logging policy's propensity of the item at the position
    context: np.ndarray  # one-hot user features (obp's get_dummies(drop_first=True))
    n_actions: int

    def __len__(self) -> int:
        return len(self.action)


def _read(data: Path, policy: str, campaign: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    names = (f"obd/{policy}/{campaign}/{campaign}.csv", f"obd/{policy}/{campaign}/item_context.csv")
    if data.is_file() and tarfile.is_tarfile(data):
        with tarfile.open(data) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            frames = []
            for name in names:
                found = [m for n, m in members.items() if n.endswith(name)]
                if not found:
                    raise DataMissing(f"{data} has no member ending in {name}")
                handle = tar.extractfile(found[0])
                assert handle is not None
                frames.append(pd.read_csv(io.BytesIO(handle.read()), index_col=0))
            return frames[0], frames[1]
    if data.is_dir():
        for root in (data, data / "obd", data / "obp" / "dataset" / "obd"):
            folder = root / policy / campaign
            if (folder / f"{campaign}.csv").is_file():
                return (
                    pd.read_csv(folder / f"{campaign}.csv", index_col=0),
                    pd.read_csv(folder / "item_context.csv", index_col=0),
                )
    raise DataMissing(f"no OBD {policy}/{campaign} log under {data}")


def load_obd(data: Path, policy: str, campaign: str) -> Feedback:
    """One logged policy's ``{campaign}.csv`` from the sdist archive or an unpacked ``obd`` folder."""
    log, items = _read(Path(data), policy, campaign)
    missing = {"timestamp", "item_id", "position", "click", "propensity_score"} - set(log.columns)
    if missing:
        raise ValueError(f"the {policy}/{campaign} log lacks column(s) {', '.join(sorted(missing))}")
    log = log.sort_values("timestamp", kind="stable")
    user = log.loc[:, log.columns.str.contains("user_feature")].astype(str)
    context = pd.get_dummies(user, drop_first=True).to_numpy(dtype=np.float64)
    position = pd.Series(log["position"]).rank(method="dense").to_numpy(dtype=np.int64) - 1
    action = log["item_id"].to_numpy(dtype=np.int64)
    return Feedback(
        action=action,
        position=position,
        reward=log["click"].to_numpy(dtype=np.float64),
        pscore=log["propensity_score"].to_numpy(dtype=np.float64),
        context=context,
        n_actions=max(len(items), int(action.max()) + 1),
    )


def bts_action_dist(
    alpha: Any, beta: Any, len_list: int = LEN_LIST, n_sim: int = 100_000, seed: int = 12345
) -> np.ndarray:
    """``(n_actions, len_list)``: how often each item lands in each slot when BTS ranks Beta(alpha, beta)
    draws, as obp's ``BernoulliTS.compute_batch_action_dist`` (no rewards observed yet: the prior alone).

    obp draws ``RandomState(seed).beta(alpha, beta)`` once per simulation; one ``(n_sim, n_actions)`` call
    consumes the same stream in the same order, so the counts are the same.
    """
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    draws = np.random.RandomState(seed).beta(a, b, size=(n_sim, len(a)))
    ranked = np.argsort(draws, axis=1)[:, ::-1][:, :len_list]
    dist = np.zeros((len(a), len_list))
    for pos in range(len_list):
        dist[:, pos] = np.bincount(ranked[:, pos], minlength=len(a)) / n_sim
    return dist


def reward_model(fb: Feedback, folds: int = 3, seed: int = 12345, c: float = 1.0) -> np.ndarray:
    """Cross-fitted ``P(click | user, item, position)``, ``(n, n_actions, len_list)``: each row predicted by a
    logistic regression fitted on the other folds (one-hot user features + item + position, L2)."""
    n, k = len(fb), fb.context.shape[1]
    n_pos = int(fb.position.max()) + 1
    items = np.eye(fb.n_actions)[fb.action]
    slots = np.eye(n_pos)[fb.position]
    x = np.hstack([fb.context, items, slots])
    q = np.empty((n, fb.n_actions, n_pos))
    for fit, held in KFold(folds, shuffle=True, random_state=seed).split(x):
        y = fb.reward[fit]
        if y.min() == y.max():  # a fold without clicks (tiny logs): its rate
            q[held] = float(y.mean())
            continue
        model = LogisticRegression(C=c, max_iter=2000).fit(x[fit], y)
        w = model.coef_[0]
        # the logit is additive: user part + item part + position part
        logit = (
            (fb.context[held] @ w[:k])[:, None, None]
            + w[k : k + fb.n_actions][None, :, None]
            + w[k + fb.n_actions :][None, None, :]
            + model.intercept_[0]
        )
        q[held] = 1.0 / (1.0 + np.exp(-logit))
    return q


def ours(fb: Feedback, action_dist: np.ndarray, q: np.ndarray) -> dict[str, Callable[[], Any]]:
    """The platform's estimators, from the same ``(n, items, positions)`` arrays obp gets: the candidate's
    probability of a logged row is ``action_dist[row, item, position]``."""
    rows = np.arange(len(fb))

    def target_prob() -> np.ndarray:
        return np.asarray(action_dist[rows, fb.action, fb.position])

    def run_ips() -> Any:
        return ips(fb.reward, fb.pscore, target_prob())

    def run_snips() -> Any:
        return snips(fb.reward, fb.pscore, target_prob())

    def run_dr() -> Any:
        at_position = action_dist[rows, :, fb.position]  # (n, items): BTS's distribution in the row's slot
        q_at_position = q[rows, :, fb.position]
        return doubly_robust(
            fb.reward,
            fb.pscore,
            at_position[rows, fb.action],
            q_logged=q_at_position[rows, fb.action],
            q_target=np.einsum("ij,ij->i", at_position, q_at_position),
        )

    return {"IPS": run_ips, "SNIPS": run_snips, "DR": run_dr}


def obp_estimators(
    fb: Feedback, action_dist: np.ndarray, q: np.ndarray
) -> dict[str, Callable[[], float]] | None:
    try:
        from obp.ope import (  # type: ignore[import-not-found]
            DoublyRobust,
            InverseProbabilityWeighting,
            SelfNormalizedInverseProbabilityWeighting,
        )
    except ImportError:
        return None
    common = {"reward": fb.reward, "action": fb.action, "position": fb.position, "pscore": fb.pscore}
    return {
        "IPS": lambda: InverseProbabilityWeighting().estimate_policy_value(action_dist=action_dist, **common),
        "SNIPS": lambda: SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(
            action_dist=action_dist, **common
        ),
        "DR": lambda: DoublyRobust().estimate_policy_value(
            action_dist=action_dist, estimated_rewards_by_reg_model=q, **common
        ),
    }


def obp_action_dist(n_actions: int, campaign: str, n_sim: int) -> np.ndarray | None:
    try:
        from obp.policy import BernoulliTS  # type: ignore[import-not-found]
    except ImportError:
        return None
    policy = BernoulliTS(
        n_actions=n_actions, len_list=LEN_LIST, is_zozotown_prior=True, campaign=campaign, random_state=12345
    )
    return np.asarray(policy.compute_batch_action_dist(n_sim=n_sim)[0])


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    result = fn()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT, help="obp-0.5.7.tar.gz or an obd folder")
    parser.add_argument("--campaign", choices=CAMPAIGNS, default="all")
    parser.add_argument("--n-sim", type=int, default=100_000, help="BTS Monte-Carlo draws (obp's default)")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per estimator (median)")
    parser.add_argument("--json", action="store_true", help="one JSON object per estimator and line")
    args = parser.parse_args(argv)
    try:
        logged = load_obd(args.data, "random", args.campaign)
        on_policy = load_obd(args.data, "bts", args.campaign)
    except DataMissing as exc:
        print(
            f"{exc}.\nThe OBD sample ships in obp 0.5.7's source archive; get it (nothing is downloaded"
            " here) with\n"
            f"    {DOWNLOAD}\nand pass --data DIR/obp-0.5.7.tar.gz",
            file=sys.stderr,
        )
        return 2
    prior = ZOZOTOWN_PRIOR[args.campaign]
    if len(prior["alpha"]) != logged.n_actions:
        print(f"the prior has {len(prior['alpha'])} items, the log {logged.n_actions}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    dist = bts_action_dist(prior["alpha"], prior["beta"], n_sim=args.n_sim)
    dist_seconds = time.perf_counter() - start
    start = time.perf_counter()
    obp_dist = obp_action_dist(logged.n_actions, args.campaign, args.n_sim)
    obp_dist_seconds = time.perf_counter() - start
    if obp_dist is not None:
        dist_gap = float(np.abs(obp_dist - dist).max())
        dist = obp_dist  # both sides get obp's own distribution
    q = reward_model(logged)

    truth = float(on_policy.reward.mean())
    truth_se = math.sqrt(truth * (1 - truth) / len(on_policy))
    action_dist = np.broadcast_to(dist, (len(logged), *dist.shape))  # obp's (n_rounds, items, positions)
    mine = ours(logged, action_dist, q)
    theirs = obp_estimators(logged, action_dist, q)
    rows = []
    for name, fn in mine.items():
        estimate, seconds = timed(fn, args.repeat)
        obp_value = obp_seconds = None
        if theirs is not None:
            obp_value, obp_seconds = timed(theirs[name], args.repeat)
            obp_value = float(obp_value)
        rows.append((name, estimate, obp_value, seconds, obp_seconds))

    if args.json:
        for name, estimate, obp_value, seconds, obp_seconds in rows:
            record = {
                "dataset": "obd-sample:random->bts",
                "campaign": args.campaign,
                "estimator": name,
                "ours": estimate.value,
                "obp": obp_value,
                "truth": truth,
                "seconds_ours": seconds,
                "seconds_obp": obp_seconds,
            }
            print(json.dumps(record))
        return 0

    print(
        f"OBD sample, campaign {args.campaign}: BTS's click rate estimated from the Random log "
        f"({len(logged):,} rows, {int(logged.reward.sum())} clicks, {logged.n_actions} items x "
        f"{LEN_LIST} positions)"
    )
    print(
        f"on-policy truth (BTS log, {len(on_policy):,} rows, {int(on_policy.reward.sum())} clicks): "
        f"{truth:.5f}  95 % CI [{truth - Z95 * truth_se:.5f}, {truth + Z95 * truth_se:.5f}]"
    )
    if obp_dist is None:
        print(
            f"BTS action distribution: this benchmark's reproduction ({args.n_sim:,} draws, "
            f"{dist_seconds:.2f} s); obp is not importable: no side-by-side"
        )
    else:
        print(
            f"BTS action distribution: obp's ({obp_dist_seconds:.2f} s); the reproduction "
            f"({dist_seconds:.2f} s) differs by at most {dist_gap:.1e}"
        )
    header = (
        f"{'estimator':<9} {'ours':>9} {'ours 95 % CI':>20} {'obp':>9} {'|diff|':>8} "
        f"{'ms ours':>8} {'ms obp':>8} {'speed-up':>8} {'rel.err':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, estimate, obp_value, seconds, obp_seconds in rows:
        low, high = estimate.ci95
        ci = f"[{low:.5f}, {high:.5f}]"
        o = f"{obp_value:.5f}" if obp_value is not None else "n/a"
        diff = f"{abs(obp_value - estimate.value):.1e}" if obp_value is not None else "n/a"
        ms_obp = f"{1e3 * obp_seconds:.3f}" if obp_seconds is not None else "n/a"
        speed = f"{obp_seconds / seconds:.1f}x" if obp_seconds is not None else "n/a"
        rel = (estimate.value - truth) / truth
        print(
            f"{name:<9} {estimate.value:>9.5f} {ci:>20} {o:>9} {diff:>8} "
            f"{1e3 * seconds:>8.3f} {ms_obp:>8} {speed:>8} {rel:>+8.1%}"
        )
    print(f"relative error = (estimate - truth) / truth; times: median of {args.repeat} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
