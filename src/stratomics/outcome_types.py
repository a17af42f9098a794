"""Outcome types: the sample-sheet columns each type needs, its checks and the models that use it.

:data:`OUTCOME_TYPES` is the registry; the config schema's ``type`` enum is generated from it. Each
step looks up its own function by the type's ``model`` name (one of ``logistic``, ``cox``,
``linear``, ``ordinal``): the per-feature fitters in :mod:`stratomics.associate`, the subgroup tests in
:mod:`stratomics.outcomes` and the prediction targets in :mod:`stratomics.predict`, so that this
module sits below all of them. Adding an outcome type is one :class:`OutcomeType` here plus a
function under its model name in each step that should handle it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from stratomics.errors import StratomicsInputError

__all__ = ["OUTCOME_TYPES", "OutcomeType", "ordinal_codes", "outcome_type"]


def _shown(values: pd.Series, limit: int = 3) -> str:
    """``'value' (patient P)`` for the first few entries, and how many more there are."""
    shown = ", ".join(f"'{value}' (patient {patient})" for patient, value in values.iloc[:limit].items())
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _not_numbers(values: pd.Series) -> pd.Series:
    """The entries of a column read as text that are not numbers (decimal commas accepted)."""
    text = values.dropna()
    return text[pd.to_numeric(text.astype(str).str.replace(",", ".", regex=False), errors="coerce").isna()]


def check_time(values: pd.Series, outcome: str, source: str) -> None:
    """A follow-up time must be numeric and non-negative; raises :class:`StratomicsInputError`."""
    if values.dtype.kind != "f":
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': time column '{values.name}' is not numeric: "
            f"{_shown(_not_numbers(values))}. Give follow-up times as numbers (e.g. days) and leave unknown "
            "times empty."
        )
    negative = values[values < 0]
    if len(negative):
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': column '{values.name}' has negative time "
            f"{negative.iloc[0]:g} (patient {negative.index[0]}). Times must be >= 0."
        )


def check_two_classes(values: pd.Series, outcome: str, source: str) -> None:
    """A binary outcome or an event indicator needs exactly two classes."""
    classes = sorted(values.dropna().unique().tolist(), key=str)
    if len(classes) != 2:
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': column '{values.name}' must have two classes (0/1), "
            f"found {len(classes)}: {classes[:5]}. An outcome with one class cannot be analysed."
        )


def check_numeric(values: pd.Series, outcome: str, source: str) -> None:
    """A continuous outcome must be numbers, with more than one distinct value."""
    if values.dtype.kind not in "fiu":
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': column '{values.name}' is not numeric: {_shown(_not_numbers(values))}. "
            "Give the outcome as numbers and leave unknown values empty."
        )
    if values.nunique() < 2:
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': column '{values.name}' has {values.nunique()} distinct value(s); "
            "a continuous outcome that does not vary cannot be analysed."
        )


def ordinal_codes(values: pd.Series, levels: list | None = None) -> pd.Series:
    """Ordered categories as codes 0..K-1 over the observed levels (NaN where missing).

    Parameters
    ----------
    values
        The outcome column: numbers (ordered as numbers) or text listed in ``levels``.
    levels
        The categories from lowest to highest (``cohort.outcomes.<name>.levels``); None: numeric order.

    Returns
    -------
    Float codes; a level never observed takes no code.
    """
    if levels is None:
        numbers = pd.to_numeric(values, errors="coerce")
        return numbers.map({level: code for code, level in enumerate(sorted(numbers.dropna().unique()))})
    order = {str(level): rank for rank, level in enumerate(levels)}
    ranks = values.map(lambda value: order.get(str(value).removesuffix(".0")) if pd.notna(value) else np.nan)
    return ranks.map({rank: code for code, rank in enumerate(sorted(ranks.dropna().unique()))})


def check_ordinal(values: pd.Series, outcome: str, source: str, *, levels: list | None = None) -> None:
    """An ordinal outcome is numbers or the text of ``levels``, with at least two categories observed."""
    if levels is None and values.dtype.kind not in "fiu":
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': column '{values.name}' holds text ({_shown(_not_numbers(values))}). "
            f"List its categories from lowest to highest in cohort.outcomes.{outcome}.levels, or code them as numbers."
        )
    if levels is not None:
        known = {str(level) for level in levels}
        unknown = values.dropna()[~values.dropna().astype(str).str.removesuffix(".0").isin(known)]
        if len(unknown):
            raise StratomicsInputError(
                f"{source}: outcome '{outcome}': column '{values.name}' has values that are not among its levels "
                f"{levels}: {_shown(unknown)}. Add them to cohort.outcomes.{outcome}.levels or leave them empty."
            )
    if ordinal_codes(values, levels).nunique() < 2:
        raise StratomicsInputError(
            f"{source}: outcome '{outcome}': column '{values.name}' has fewer than two observed categories; an "
            "ordinal outcome that does not vary cannot be analysed."
        )


@dataclass(frozen=True)
class OutcomeType:
    """What one outcome type needs and how the steps model it.

    Attributes
    ----------
    name
        The type's name in the config (``cohort.outcomes.<name>.type``).
    roles
        Config keys that name the outcome's sample-sheet columns (``column`` defaults to the
        outcome's own name).
    checks
        One check per role, called with (column values, outcome name, source) at ingest.
    model
        The name under which each step finds its function for this type.
    event_role
        The role whose column counts events (``None``: the outcome has no events).
    predictable
        Whether :mod:`stratomics.predict` builds a prediction for it.
    options
        Config keys of the outcome passed to its checks as keywords (when set).
    """

    name: str
    roles: tuple[str, ...]
    checks: tuple[Callable[[pd.Series, str, str], None], ...]
    model: str
    event_role: str | None
    predictable: bool
    options: tuple[str, ...] = ()

    def columns(self, outcome: str, spec: dict) -> list[str]:
        """The sample-sheet columns of an outcome, in the order of :attr:`roles`."""
        return [spec.get(role, outcome) for role in self.roles]

    def event_column(self, outcome: str, spec: dict) -> str | None:
        """The column of the event indicator (binary outcome or survival event), or None."""
        return spec.get(self.event_role, outcome) if self.event_role else None

    @property
    def time_to_event(self) -> bool:
        """Whether the outcome is a follow-up time with an event indicator."""
        return "time" in self.roles

    def check(self, sheet: pd.DataFrame, outcome: str, spec: dict, *, source: str) -> None:
        """Run the type's checks on the outcome's columns of the sample sheet."""
        keywords = {option: spec[option] for option in self.options if option in spec}
        for check, column in zip(self.checks, self.columns(outcome, spec)):
            check(sheet[column], outcome, source, **keywords)


OUTCOME_TYPES: dict[str, OutcomeType] = {
    outcome.name: outcome
    for outcome in (
        OutcomeType("binary", ("column",), (check_two_classes,), model="logistic", event_role="column",
                    predictable=True),
        OutcomeType("survival", ("time", "event"), (check_time, check_two_classes), model="cox", event_role="event",
                    predictable=True),
        OutcomeType("continuous", ("column",), (check_numeric,), model="linear", event_role=None, predictable=False),
        OutcomeType("ordinal", ("column",), (check_ordinal,), model="ordinal", event_role=None, predictable=False,
                    options=("levels",)),
    )
}  # fmt: skip


def outcome_type(spec: dict, outcome: str = "") -> OutcomeType:
    """The :class:`OutcomeType` of an outcome's config entry; an unknown type is an input error."""
    try:
        return OUTCOME_TYPES[spec["type"]]
    except KeyError:
        raise StratomicsInputError(
            f"outcome '{outcome}': type '{spec.get('type')}' is not one of {', '.join(OUTCOME_TYPES)}."
        ) from None
