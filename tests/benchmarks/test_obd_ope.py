"""benchmarks/obd_ope.py on a tiny synthetic log in OBD's format (no dependency on the real sample)."""

from __future__ import annotations

import importlib
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

N_ACTIONS = 4


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return importlib.import_module("benchmarks.obd_ope")


def _write_obd(root: Path, n: int = 600, seed: int = 0) -> Path:
    """``root/obd/{random,bts}/all/{all,item_context}.csv`` shaped like obp 0.5.7's sample."""
    rng = np.random.default_rng(seed)
    for policy in ("random", "bts"):
        folder = root / "obd" / policy / "all"
        folder.mkdir(parents=True)
        log = pd.DataFrame(
            {
                "timestamp": pd.date_range("2019-11-24", periods=n, freq="min", tz="UTC")
                .astype(str)
                .to_numpy()[rng.permutation(n)],
                "item_id": rng.integers(0, N_ACTIONS, n),
                "position": rng.integers(1, 4, n),  # 1..3 in the files
                "click": (rng.random(n) < 0.1).astype(int),
                "propensity_score": 1.0 / N_ACTIONS,
                **{f"user_feature_{j}": rng.choice(["a1f", "b2e", "c3d"], n) for j in range(2)},
                **{f"user-item_affinity_{j}": 0.0 for j in range(N_ACTIONS)},
            }
        )
        log.to_csv(folder / "all.csv")
        items = pd.DataFrame(
            {
                "item_id": range(N_ACTIONS),
                "item_feature_0": rng.normal(size=N_ACTIONS),
                "item_feature_1": rng.choice(["x", "y"], N_ACTIONS),
            }
        )
        items.to_csv(folder / "item_context.csv")
    return root / "obd"


def test_the_loader_reads_a_folder_and_the_sdist_archive_alike(bench: ModuleType, tmp_path: Path) -> None:
    obd = _write_obd(tmp_path)
    archive = tmp_path / "obp-0.5.7.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(obd, arcname="obp-0.5.7/obp/dataset/obd")
    fb = bench.load_obd(obd, "random", "all")
    same = bench.load_obd(archive, "random", "all")
    assert len(fb) == 600
    assert fb.n_actions == N_ACTIONS
    assert set(fb.position.tolist()) == {0, 1, 2}  # dense rank - 1, as obp
    assert fb.context.shape == (600, 4)  # two features x three values, drop_first
    raw = pd.read_csv(obd / "random" / "all" / "all.csv", index_col=0).sort_values("timestamp")
    np.testing.assert_array_equal(fb.action, raw["item_id"].to_numpy())  # sorted by time, as obp
    for field in ("action", "position", "reward", "pscore", "context"):
        np.testing.assert_array_equal(getattr(fb, field), getattr(same, field))


def test_the_estimates_run_on_it(bench: ModuleType, tmp_path: Path) -> None:
    fb = bench.load_obd(_write_obd(tmp_path), "random", "all")
    dist = bench.bts_action_dist([5, 1, 2, 1], [50, 40, 60, 30], n_sim=2000)
    assert dist.shape == (N_ACTIONS, 3)
    np.testing.assert_allclose(dist.sum(axis=0), 1.0)
    q = bench.reward_model(fb)
    assert q.shape == (len(fb), N_ACTIONS, 3)
    assert ((q > 0) & (q < 1)).all()
    action_dist = np.broadcast_to(dist, (len(fb), *dist.shape))
    estimates = {name: run() for name, run in bench.ours(fb, action_dist, q).items()}
    assert set(estimates) == {"IPS", "SNIPS", "DR"}
    for estimate in estimates.values():
        assert np.isfinite(estimate.value)
        assert 0.0 <= estimate.value <= 1.0


def test_the_bts_reproduction_is_obps_loop(bench: ModuleType) -> None:
    """obp's ``compute_batch_action_dist``: one ``beta(alpha, beta)`` draw per simulation, ranked."""
    alpha, beta, n_sim = np.array([5.0, 1, 2, 1]), np.array([50.0, 40, 60, 30]), 500
    random_ = np.random.RandomState(12345)
    counts = np.zeros((N_ACTIONS, 3))
    for _ in range(n_sim):
        for pos, action in enumerate(random_.beta(a=alpha, b=beta).argsort()[::-1][:3]):
            counts[action, pos] += 1
    np.testing.assert_array_equal(bench.bts_action_dist(alpha, beta, n_sim=n_sim), counts / n_sim)


def test_missing_data_exits_2_naming_the_download(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--data", str(tmp_path / "nothing")]) == 2
    assert "pip download --no-deps --no-binary :all:" in capsys.readouterr().err
