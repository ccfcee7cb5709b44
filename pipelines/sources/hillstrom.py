"""The Hillstrom e-mail experiment (MineThatData, 2008) as an uplift data set.

64,000 customers were split at random into a men's e-mail, a women's e-mail and a no-e-mail third, and their
visits, conversions and spend tracked for two weeks. Being randomised with a control group, it is the public
yardstick for uplift models: this module turns the CSV into numeric features, a 0/1 treatment per arm and
the outcomes, so the same ``models.estimators.TwoModelUplift`` that runs on the simulator's campaigns
runs on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput

ARMS = {"womens": "Womens E-Mail", "mens": "Mens E-Mail"}
CONTROL = "No E-Mail"
OUTCOMES = ("visit", "conversion")
COLUMNS = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment", *OUTCOMES)


def read_hillstrom(path: Path) -> pd.DataFrame:
    """The raw file with its columns checked; a missing column is named."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file (the Hillstrom CSV)", field="path")
    raw = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}", field="columns")
    return raw


def uplift_frame(raw: pd.DataFrame, arm: str) -> pd.DataFrame:
    """One arm against the control third: numeric features, ``treated``, its probability and the outcomes.

    ``arm`` is ``womens``, ``mens`` or ``any`` (either e-mail). Each arm got a third of the customers, so a
    customer of the pair was treated with probability 1/2 (2/3 for ``any``).
    """
    if arm == "any":
        rows = raw
        treated = raw["segment"] != CONTROL
        p_treated = 2 / 3
    elif arm in ARMS:
        rows = raw[raw["segment"].isin([ARMS[arm], CONTROL])]
        treated = rows["segment"] == ARMS[arm]
        p_treated = 0.5
    else:
        raise InvalidInput(f"arm must be one of womens, mens, any; got {arm!r}", field="arm")
    t = treated.to_numpy()
    frame = pd.DataFrame(
        {
            "recency": rows["recency"].astype(np.float64),
            "history": rows["history"].astype(np.float64),
            "mens": rows["mens"].astype(np.float64),
            "womens": rows["womens"].astype(np.float64),
            "newbie": rows["newbie"].astype(np.float64),
            "urban": (rows["zip_code"] == "Urban").astype(np.float64),
            "rural": (rows["zip_code"] == "Rural").astype(np.float64),
            "web": (rows["channel"] == "Web").astype(np.float64),
            "phone": (rows["channel"] == "Phone").astype(np.float64),
            "treated": t.astype(np.int8),
            "probability": np.where(t, p_treated, 1 - p_treated),
        }
    )
    for outcome in OUTCOMES:
        frame[outcome] = rows[outcome].astype(np.int8).to_numpy()
    return frame.reset_index(drop=True)
