"""Import the Starbucks Rewards capstone data (``portfolio.json``, ``profile.json``, ``transcript.json``).

The data has no calendar: ``time`` counts hours since the start of a ~30-day test, ages are as of that start,
and ``118`` stands for "age unknown". We anchor it to a fixed, documented epoch, **2018-07-27T00:00Z**, the
day after the last ``became_member_on`` (2018-07-26), so every customer joined before the test begins,
``time`` ``t`` is ``EPOCH + t hours``, and ``birth_year = 2018 - age``. A fixed epoch (rather than "now")
keeps every derived id, timestamp and birth year the same on every run, which is what makes the import
idempotent.

Mappings (see the README section "Starbucks data"):

- portfolio -> offers: ``informational`` stays informational; ``bogo`` and ``discount`` become ``cashback``
  offers (the reward is paid outside the points ledger) with ``threshold = difficulty``, ``cost = reward``,
  ``value = difficulty`` (converted to the programme's currency at the rules' rate, see ``load_offers``),
  ``duration_days = duration``; the source fields are kept in ``offers.attributes`` (amounts in USD).
- profile -> customers: sentinels and nulls become NULL (never a sentinel), income is USD per year, and
  ``income_band`` uses the simulator's labels with USD cut points (see ``INCOME_BANDS``).
- transcript -> ``transaction`` rows are USD purchases posted through ``ingest.ingest_frame`` (the
  code behind ``POST /v1/transactions``; they earn at the rules' fixed USD rate and the entry keeps the USD
  amount); ``offer received/viewed/completed`` become ``offer_events`` ``sent/viewed/completed``, a
  completion's ``value`` being its reward in USD.

Ids are derived from the source so that a re-run inserts nothing twice: a transaction is
``sbx:<person>:<hour>:<n>`` and an offer event ``sbx:<person>:<offer>:<event>:<hour>:<n>``, where ``n``
counts earlier rows of the file with the same key (the transcript repeats 397 offer events exactly; they
are kept, as the source counts them). Row numbers in problem reports are line numbers of the file (the
transcript has blank lines; they are skipped and not counted).
"""

from __future__ import annotations

from pipelines.sources.starbucks.loader import import_starbucks
from pipelines.sources.starbucks.reader import StarbucksData, check_directory, read_starbucks
from pipelines.sources.starbucks.records import EPOCH, FILES, income_band, parse_portfolio, parse_profile
from pipelines.sources.starbucks.report import StarbucksReport
from pipelines.sources.starbucks.transcript import Transcript, parse_transcript

__all__ = [
    "EPOCH",
    "FILES",
    "StarbucksData",
    "StarbucksReport",
    "Transcript",
    "check_directory",
    "import_starbucks",
    "income_band",
    "parse_portfolio",
    "parse_profile",
    "parse_transcript",
    "read_starbucks",
]
