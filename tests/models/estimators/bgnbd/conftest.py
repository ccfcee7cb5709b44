"""Shared material of the BG/NBD tests: the paper's CDNOW parameters, a bank-like base, simulated ages."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

# Fader, Hardie & Lee (2005), CDNOW sample of 2,357 customers, in weeks: the rounded estimates printed in the
# paper, and the unrounded ones of the accompanying spreadsheet (notes/004) that its tables are computed with.
PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_MLE = {"r": 0.2426, "alpha": 4.4135, "a": 0.7931, "b": 2.4259}
# A bank-like base: about two purchase days a fortnight, few leave after any one of them.
BANK = {"r": 2.0, "alpha": 3.0, "a": 1.2, "b": 20.0}
UTC = dt.UTC


def ages(n: int, seed: int) -> np.ndarray:
    """One to two years of history (in weeks), like customers acquired over a year."""
    return np.random.default_rng(seed).uniform(52, 104, n)


def rfm(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return frame["frequency"], frame["recency"], frame["T"]
