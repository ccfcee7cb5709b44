"""The offers catalogue read from frames or records, as the offer model's columns take it."""

from __future__ import annotations

import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.inputs import catalogue_frame


def test_catalogue_from_records_and_frames() -> None:
    class Row:
        def __init__(self, **kw: object) -> None:
            self.__dict__.update(kw)

    rows = [
        Row(id="A", kind="cashback", threshold=100, duration_days=7),
        {"id": "B", "kind": "informational"},
    ]
    frame = catalogue_frame(rows)
    assert frame["offer_id"].tolist() == ["A", "B"]
    assert catalogue_frame(pd.DataFrame({"id": ["X"], "kind": ["multiplier"]}))["offer_id"].tolist() == ["X"]
    with pytest.raises(InvalidInput, match="twice"):
        catalogue_frame(pd.DataFrame({"offer_id": ["X", "X"], "kind": ["multiplier"] * 2}))
