"""The jobs' parameters, typed, from the one configuration file (``models/jobs/parameters.toml``).

Hyper-parameters and protocol figures live in that file, not in code, so changing one is a reviewed edit of
data and every run records the values it used (``JobParams.logged``, logged as MLflow parameters
``job.*``). What a caller asks of one run (an as-of date, a truth folder, whether to promote) is not a
parameter of the job: it travels in the request objects of ``models.jobs.requests``.

The file is read when a job runs, never at import.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Self, TypeVar

from loyalty_core import DEFAULT_JOB_PARAMS, InvalidInput, get_settings

DEFAULT_PARAMETERS = DEFAULT_JOB_PARAMS  # models/jobs/parameters.toml

T = TypeVar("T")


def _model(table: Any, where: str) -> dict[str, Any]:
    """Hyper-parameters as the estimators take them (TOML arrays become tuples, as the code wrote them)."""
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{where} must be a table of hyper-parameters", field="job_params")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def _build(cls: type[T], table: Any, where: str, **tables: Any) -> T:
    """``cls`` from a TOML table, refusing unknown or missing keys with the key's place in the file."""
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{where} is missing or not a table", field="job_params")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    # a field with a default may be left out (a file written before the field existed still loads)
    required = {
        f.name
        for f in fields(cls)  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING
    }
    values = {k: v for k, v in table.items() if k not in tables}
    unknown = sorted(set(values) - names)
    missing = sorted(required - set(values) - set(tables))
    if unknown or missing:
        said = [
            f"unknown {', '.join(unknown)}" if unknown else "",
            f"missing {', '.join(missing)}" if missing else "",
        ]
        raise InvalidInput(f"{where}: {'; '.join(s for s in said if s)}", field="job_params")
    return cls(**values, **tables)


@dataclass(frozen=True, slots=True)
class ChurnParams:
    """``[churn]``: the label window, the cutoff grid and the default as-of's demands (``churn_steps``)."""

    horizon_days: int
    n_cutoffs: int
    spacing_days: int
    min_history_days: int
    min_class_rows: int
    quiet_share: float
    model: Mapping[str, Any]
    # short histories (``models.jobs.churn_cutoffs.cutoff_plan``): weekly cutoffs, validation purged
    short_history_days: int = 365
    short_spacing_days: int = 7
    short_n_cutoffs: int = 12
    # a requested horizon longer than complete label windows allow: the labels' window, at least this long
    min_label_days: int = 28
    # ... and the requested horizon at most this many times it (BG/NBD extrapolates, the trees do not)
    max_extrapolation: float = 4.0
    # the champion's candidates (``models.jobs.churn_candidates.CANDIDATES``), best on the holdout wins
    candidates: tuple[str, ...] = ("lightgbm", "bgnbd_p_none", "bgnbd_expected", "stack")


@dataclass(frozen=True, slots=True)
class OfferCandidate:
    """One ``[offers.candidates.*]`` table: a model the offer job may choose on its inner split."""

    top_columns: int  # 0: every input column
    model: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OfferParams:
    """``[offers]``: the one protocol of the offer job, for every data set (``models.jobs.offers``).

    ``candidates`` keep the file's order, cheapest to score first: the first is the fallback, a later one is
    chosen only when it beats the current choice by ``min_gain`` on the inner split."""

    max_send_cutoffs: int
    exact_cutoffs: bool
    closed_end: bool
    grow_from_history: bool
    uplift: bool
    min_gain: float
    choice_seconds: float
    ranking: Mapping[str, Any]  # the first pass, which only ranks the columns
    candidates: Mapping[str, OfferCandidate]

    def candidate(self, name: str) -> OfferCandidate:
        try:
            return self.candidates[name]
        except KeyError:
            raise InvalidInput(
                f"unknown offer-model candidate {name!r}; one of {', '.join(self.candidates)}",
                field="candidate",
            ) from None


@dataclass(frozen=True, slots=True)
class UpliftParams:
    """``[uplift]``: the learners the selector compares by cross-validated Qini on the training campaigns
    (``models.estimators.UpliftSelector``), its folds, and ``[uplift.model]``, their shared
    hyper-parameters."""

    candidates: tuple[str, ...]
    folds: int
    model: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ScoringParams:
    top_k: int
    reasons_top: int
    chunk: int
    margin_rate: float


@dataclass(frozen=True, slots=True)
class JobParams:
    """Every job's parameters, and the file they came from."""

    churn: ChurnParams
    offers: OfferParams
    uplift: UpliftParams
    scoring: ScoringParams
    source: Path

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], source: Path) -> Self:
        where = str(source)
        churn = doc.get("churn", {})
        offers = doc.get("offers", {})
        candidates = offers.get("candidates", {}) if isinstance(offers, Mapping) else {}
        if not isinstance(candidates, Mapping) or not candidates:
            raise InvalidInput(f"{where}: no [offers.candidates.*] table", field="job_params")
        return cls(
            churn=_build(
                ChurnParams,
                churn,
                f"{where} [churn]",
                model=_model(churn.get("model"), f"{where} [churn.model]"),
            ),
            offers=_build(
                OfferParams,
                offers,
                f"{where} [offers]",
                ranking=_model(offers.get("ranking"), f"{where} [offers.ranking]"),
                candidates={
                    name: _build(
                        OfferCandidate,
                        table,
                        f"{where} [offers.candidates.{name}]",
                        model=_model(table.get("model"), f"{where} [offers.candidates.{name}.model]"),
                    )
                    for name, table in candidates.items()
                },
            ),
            uplift=_uplift(doc.get("uplift"), where),
            scoring=_build(ScoringParams, doc.get("scoring"), f"{where} [scoring]"),
            source=source,
        )


def _uplift(table: Any, where: str) -> UpliftParams:
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{where} [uplift] is missing or not a table", field="job_params")
    built = _build(
        UpliftParams, table, f"{where} [uplift]", model=_model(table.get("model"), f"{where} [uplift.model]")
    )
    candidates = built.candidates
    if isinstance(candidates, str) or not all(isinstance(c, str) for c in candidates) or not candidates:
        raise InvalidInput(f"{where} [uplift] candidates must be a list of learner names", field="job_params")
    if isinstance(built.folds, bool) or not isinstance(built.folds, int) or built.folds < 2:
        raise InvalidInput(f"{where} [uplift] folds must be an integer of at least 2", field="job_params")
    return UpliftParams(tuple(candidates), built.folds, built.model)


def load_job_params(path: Path | str = DEFAULT_PARAMETERS) -> JobParams:
    """The parameters in ``path`` (by default the repository's ``models/jobs/parameters.toml``)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"no job parameters file at {path}", field="job_params") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}", field="job_params") from exc
    return JobParams.from_mapping(doc, path)


def job_params_in_use() -> JobParams:
    """The parameters the jobs run with: the file ``Settings.job_params`` (``LOYALTY_JOB_PARAMS``) names."""
    return load_job_params(get_settings().job_params)


def flatten(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"model": {"max_rounds": 150}}`` -> ``{"<prefix>.model.max_rounds": 150}``: what a run logs."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out
