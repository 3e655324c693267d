"""ISO 2859-1 / ANSI/ASQ Z1.4 single sampling: code letters, plans, arrows, switching rules.

Pure functions and frozen values, no I/O. The tables are transcribed here from MIL-STD-105E
Table I and Table II-A (same values as Z1.4 and ISO 2859-1; sources in
``tests/vectors/iso2859-tables.json``, which the tests compare against). Table II-A is kept
as the standard prints it, arrows included, and :func:`normal_plan` follows the arrows, so a
mistake in one cell cannot hide behind a pre-resolved copy.

Only normal inspection has tables here: tightened (Table II-B) and reduced (Table II-C) plans
are not in the project's sources, so asking for them raises :class:`TableNotAvailable` rather
than guessing. The switching rules (:class:`SwitchingState`) are complete and tell when
tightened or reduced inspection is due.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from tagsmith import ConfigError, StateError

LEVELS = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")
LETTERS = "ABCDEFGHJKLMNPQR"  # I and O are not used (Table I)
SAMPLE_SIZES = dict(zip(LETTERS, (2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000), strict=True))

# Table I: (lot_min, lot_max, code letters for S-1 S-2 S-3 S-4 I II III)
_TABLE_I: tuple[tuple[int, int | None, str], ...] = (
    (2, 8, "AAAAAAB"), (9, 15, "AAAAABC"), (16, 25, "AABBBCD"), (26, 50, "ABBCCDE"),
    (51, 90, "BBCCCEF"), (91, 150, "BBCDDFG"), (151, 280, "BCDEEGH"), (281, 500, "BCDEFHJ"),
    (501, 1200, "CCEFGJK"), (1201, 3200, "CDEGHKL"), (3201, 10000, "CDFGJLM"),
    (10001, 35000, "CDFHKMN"), (35001, 150000, "DEGJLNP"), (150001, 500000, "DEGJMPQ"),
    (500001, None, "DEHKNQR"),
)

# Table II-A columns, one cell per code letter A..R: "v" down arrow, "^" up arrow, else "Ac/Re".
_TABLE_II_A: dict[str, tuple[str, ...]] = {
    "0.065": ("v",) * 10 + ("0/1", "^", "v", "1/2", "2/3", "3/4"),
    "0.10": ("v",) * 9 + ("0/1", "^", "v", "1/2", "2/3", "3/4", "5/6"),
    "0.25": ("v",) * 7 + ("0/1", "^", "v", "1/2", "2/3", "3/4", "5/6", "7/8", "10/11"),
    "0.65": ("v",) * 5 + ("0/1", "^", "v", "1/2", "2/3", "3/4", "5/6", "7/8", "10/11", "14/15", "21/22"),
    "1.0": ("v",) * 4 + ("0/1", "^", "v", "1/2", "2/3", "3/4", "5/6", "7/8", "10/11", "14/15", "21/22", "^"),
}
AQLS = tuple(_TABLE_II_A)
# Acceptance numbers of Table II-A in order along a row: one AQL step tighter is one step back.
_AC_SERIES = (0, 1, 2, 3, 5, 7, 10, 14, 21)


class Inspection(StrEnum):
    NORMAL = "normal"
    TIGHTENED = "tightened"
    REDUCED = "reduced"
    DISCONTINUED = "discontinued"


class TableNotAvailable(ConfigError):
    """The plan needs a table tagsmith does not carry (tightened II-B, reduced II-C, other AQLs)."""


@dataclass(frozen=True)
class SamplingPlan:
    """A single sampling plan for one lot: inspect ``sample_size`` units, accept if defects <= accept."""

    lot_size: int
    level: str
    aql: str
    inspection: str
    code_letter: str  # from Table I for the lot size and level
    plan_letter: str  # the letter whose plan applies after following arrows
    table_sample_size: int  # n of that plan
    sample_size: int  # what is inspected: n, or the whole lot when n >= lot size
    accept: int
    reject: int
    via_arrow: str | None  # "down to L", "up to F" or None

    @property
    def hundred_percent(self) -> bool:
        return self.sample_size == self.lot_size

    def to_dict(self) -> dict[str, Any]:
        return {"lot_size": self.lot_size, "level": self.level, "aql": self.aql, "inspection": self.inspection,
                "code_letter": self.code_letter, "plan_letter": self.plan_letter,
                "table_sample_size": self.table_sample_size, "sample_size": self.sample_size,
                "accept": self.accept, "reject": self.reject, "via_arrow": self.via_arrow,
                "hundred_percent": self.hundred_percent}


def normalise_aql(aql: str | float) -> str:
    """'0.65', 0.65, '0.650' -> '0.65'; '0.1' -> '0.10' (the column names of Table II-A)."""
    try:
        value = float(aql)
    except (TypeError, ValueError):
        raise ConfigError(f"AQL {aql!r} is not a number") from None
    for name in AQLS:
        if abs(float(name) - value) < 1e-9:
            return name
    raise TableNotAvailable(f"AQL {aql} is not in tagsmith's tables; available: {', '.join(AQLS)}")


def normalise_level(level: str) -> str:
    name = level.strip().upper()
    if name not in LEVELS:
        raise ConfigError(f"inspection level {level!r} must be one of {', '.join(LEVELS)}")
    return name


def code_letter(lot_size: int, level: str = "II") -> str:
    """Table I: the sample size code letter for a lot size and inspection level."""
    if lot_size < 2:
        raise ConfigError(f"lot size {lot_size} is too small to sample (ISO 2859-1 Table I starts at 2)")
    column = LEVELS.index(normalise_level(level))
    for low, high, letters in _TABLE_I:
        if low <= lot_size and (high is None or lot_size <= high):
            return letters[column]
    raise AssertionError("Table I covers every lot size >= 2")


def _cell(aql: str, letter: str) -> str:
    return _TABLE_II_A[aql][LETTERS.index(letter)]


def resolve_arrow(aql: str, letter: str) -> tuple[str, str | None]:
    """The letter whose plan applies (first plan below a down arrow, above an up arrow)."""
    cell, index, arrow = _cell(aql, letter), LETTERS.index(letter), None
    step = {"v": 1, "^": -1}.get(cell)
    while step is not None:
        index += step
        arrow = f"{'down' if step > 0 else 'up'} to {LETTERS[index]}"
        step = {"v": 1, "^": -1}.get(_TABLE_II_A[aql][index])
    return LETTERS[index], arrow


def normal_plan(lot_size: int, aql: str | float = "0.65", level: str = "II") -> SamplingPlan:
    """Normal single sampling plan (Table I + Table II-A), arrows followed with their sample size."""
    aql, level = normalise_aql(aql), normalise_level(level)
    letter = code_letter(lot_size, level)
    plan_letter, arrow = resolve_arrow(aql, letter)
    ac, re_ = (int(x) for x in _cell(aql, plan_letter).split("/"))
    n = SAMPLE_SIZES[plan_letter]
    return SamplingPlan(lot_size, level, aql, Inspection.NORMAL.value, letter, plan_letter, n,
                        min(n, lot_size), ac, re_, arrow)


def plan_for(lot_size: int, aql: str | float = "0.65", level: str = "II",
             inspection: Inspection | str = Inspection.NORMAL) -> SamplingPlan:
    """The plan for the inspection severity; only normal has tables (see the module docstring)."""
    inspection = Inspection(inspection)
    if inspection is Inspection.NORMAL:
        return normal_plan(lot_size, aql, level)
    if inspection is Inspection.DISCONTINUED:
        raise StateError("acceptance sampling is discontinued for this product (5 lots not accepted on "
                         "tightened inspection): record corrective action to resume at tightened inspection")
    table = {"tightened": "Table II-B", "reduced": "Table II-C"}[inspection.value]
    raise TableNotAvailable(f"{inspection.value} inspection needs ISO 2859-1 {table}, which tagsmith does not "
                            f"carry; plan under normal inspection explicitly if the quality manager agrees")


def tighter_accept_number(plan: SamplingPlan) -> int | None:
    """Ac of the same plan letter one AQL step tighter (for the switching score), or None when Ac < 2.

    Along a row of Table II-A, each AQL step moves one place along the Ac series 0,1,2,3,5,7,...
    """
    if plan.accept < 2:
        return None
    return _AC_SERIES[_AC_SERIES.index(plan.accept) - 1]


def draw_sample(serials: list[str], sample_size: int, seed: int) -> list[str]:
    """The serials to pull: uniform without replacement, reproducible from ``seed`` and the lot order."""
    if sample_size > len(serials):
        raise ConfigError(f"sample of {sample_size} from a lot of {len(serials)}")
    return random.Random(seed).sample(list(serials), sample_size)


# ---------------------------------------------------------------- switching rules
DISCONTINUE_AFTER = 5
SCORE_FOR_REDUCED = 30


@dataclass(frozen=True)
class SwitchingState:
    """Per product (one class of nonconformity): ISO 2859-1:1999 clause 9 switching between severities.

    ``recent`` holds the last lots' results on original inspection at the current severity
    (True = accepted), newest last; ``rejected_on_tightened`` counts lots not accepted since
    tightened inspection began. Resubmitted lots must not be fed in.
    """

    inspection: str = Inspection.NORMAL.value
    recent: tuple[bool, ...] = ()
    score: int = 0
    rejected_on_tightened: int = 0
    lots: int = 0

    def after_lot(self, plan: SamplingPlan, defects: int, accepted: bool, *, steady_production: bool = True,
                  reduced_approved: bool = False) -> SwitchingState:
        """The state after one lot on original inspection under ``plan``."""
        state = Inspection(self.inspection)
        if state is Inspection.DISCONTINUED:
            raise StateError("sampling is discontinued for this product: record corrective action first")
        lots = self.lots + 1
        if state is Inspection.NORMAL:
            recent = (self.recent + (accepted,))[-5:]
            score = self._score(plan, defects, accepted)
            if recent.count(False) >= 2:  # 2 of 5 or fewer consecutive lots not accepted
                return SwitchingState(Inspection.TIGHTENED.value, (), 0, 0, lots)
            if score >= SCORE_FOR_REDUCED and steady_production and reduced_approved:
                return SwitchingState(Inspection.REDUCED.value, (), 0, 0, lots)
            return SwitchingState(Inspection.NORMAL.value, recent, score, 0, lots)
        if state is Inspection.TIGHTENED:
            rejected = self.rejected_on_tightened + (not accepted)
            if rejected >= DISCONTINUE_AFTER:
                return SwitchingState(Inspection.DISCONTINUED.value, (), 0, rejected, lots)
            recent = (self.recent + (accepted,))[-5:]
            if len(recent) == 5 and all(recent):  # 5 consecutive lots accepted
                return SwitchingState(Inspection.NORMAL.value, (), 0, 0, lots)
            return SwitchingState(Inspection.TIGHTENED.value, recent, 0, rejected, lots)
        # reduced: any lot not accepted, or irregular production, returns to normal
        if not accepted or not steady_production:
            return SwitchingState(Inspection.NORMAL.value, (), 0, 0, lots)
        return replace(self, lots=lots)

    def _score(self, plan: SamplingPlan, defects: int, accepted: bool) -> int:
        """Switching score (ISO 2859-1:1999 9.3.3; unconfirmed detail, docs/reference/labels-gs1.md §5.2)."""
        tighter = tighter_accept_number(plan)
        if tighter is None:
            return self.score + 2 if accepted else 0
        return self.score + 3 if accepted and defects <= tighter else 0

    @property
    def reduced_eligible(self) -> bool:
        return self.inspection == Inspection.NORMAL.value and self.score >= SCORE_FOR_REDUCED

    def corrective_action(self) -> SwitchingState:
        """After discontinuation, the supplier's corrective action resumes sampling at tightened."""
        if self.inspection != Inspection.DISCONTINUED.value:
            raise StateError(f"sampling is not discontinued (it is {self.inspection})")
        return SwitchingState(Inspection.TIGHTENED.value, (), 0, 0, self.lots)

    def to_dict(self) -> dict[str, Any]:
        return {"inspection": self.inspection, "recent": list(self.recent), "score": self.score,
                "rejected_on_tightened": self.rejected_on_tightened, "lots": self.lots,
                "reduced_eligible": self.reduced_eligible}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SwitchingState:
        if not data:
            return cls()
        return cls(data["inspection"], tuple(bool(x) for x in data["recent"]), int(data["score"]),
                   int(data["rejected_on_tightened"]), int(data["lots"]))
