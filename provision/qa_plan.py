"""QA planning and release: the recorded ISO 2859-1 sampling plan of a batch, the switching state of
its product, and the gate a manifest passes (an accepted QA decision, or an override with a reason).

Split from :mod:`.qa` (scanning sample units), which imports from here; this module writes no SQL.
"""

from __future__ import annotations

import getpass
import secrets
import uuid
from typing import Any

from tagsmith import ConfigError, StateError
from tagsmith.batches.qarecords import QaDecision, QaPlanRecord
from tagsmith.batches.records import DONE, Unit
from tagsmith.batches.store import Store, utc_now

from .sampling import SamplingPlan, SwitchingState, draw_sample, normalise_aql, normalise_level, plan_for

DEFAULT_AQL = "0.65"


def current_user() -> str:
    """Who is at the keyboard (the OS user), for plans, results and decisions."""
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers): still record something
        return "unknown"


# ---------------------------------------------------------------- plans
def lot_units(store: Store, batch_id: str) -> list[Unit]:
    """The lot QA samples from: the batch's encoded and verified units, in allocation order."""
    return list(store.units(batch_id, DONE))


def switching_state(store: Store, product_id: str) -> SwitchingState:
    """The product's ISO 2859-1 switching state across its batches (normal when none was recorded)."""
    store.product_record(product_id)  # NotFoundError for an unknown product
    return SwitchingState.from_json(store.qa_switching(product_id))


def record_corrective_action(store: Store, product_id: str) -> SwitchingState:
    """After discontinuation, record the supplier's corrective action: sampling resumes at tightened."""
    current = switching_state(store, product_id)
    resumed = current.corrective_action()
    store.set_qa_switching(product_id, resumed.to_dict(), expected_lots=current.lots)
    return resumed


def create_plan(store: Store, batch_id: str, *, aql: str | float | None = None, level: str | None = None,
                inspection: str | None = None, seed: int | None = None, new: bool = False,
                user: str | None = None, incomplete_reason: str | None = None) -> QaPlanRecord:
    """The batch's QA plan: the recorded one, or a new one drawn and recorded now.

    An existing plan is returned as it is (redrawing until a convenient sample comes up must not
    be possible); ``new`` draws another only once the previous one has a decision (a
    resubmitted lot) or no results yet. ``inspection`` None follows the product's switching
    state; "normal" plans under normal inspection whatever the state says (recorded as such).
    A new plan is refused while units are still being encoded, unless ``incomplete_reason`` (recorded).
    """
    existing = store.qa_plan(batch_id)
    if existing is not None and not new:
        wanted = (normalise_aql(aql) if aql is not None else existing.aql, normalise_level(level or existing.level))
        if wanted != (existing.aql, existing.level):
            raise StateError(f"batch {batch_id} already has plan {existing.id} (AQL {existing.aql}, level "
                             f"{existing.level}); draw another with --new")
        return existing
    resubmission = False
    if existing is not None:
        if store.qa_decision(batch_id) is not None:
            resubmission = True
        elif store.qa_results(existing.id):
            raise StateError(f"plan {existing.id} of batch {batch_id} has results and no decision yet: "
                             "finish its scan before drawing a new plan")
    store.require_complete(batch_id, "qa plan", incomplete_reason, user or current_user())  # the lot is settled first
    batch = store.batch(batch_id)
    units = lot_units(store, batch_id)
    if len(units) < 2:
        raise StateError(f"batch {batch_id} has {len(units)} encoded unit(s): nothing to sample")
    state = switching_state(store, batch.product_id)
    plan = plan_for(len(units), DEFAULT_AQL if aql is None else aql, level or "II", inspection or state.inspection)
    seed = secrets.randbits(63) if seed is None else seed
    serials = tuple(draw_sample([u.serial for u in units], plan.sample_size, seed))
    record = QaPlanRecord(
        id=uuid.uuid4().hex[:16], batch_id=batch_id, product_id=batch.product_id, lot_size=plan.lot_size,
        level=plan.level, aql=plan.aql, inspection=plan.inspection, switching_state=state.inspection,
        code_letter=plan.code_letter, plan_letter=plan.plan_letter, table_sample_size=plan.table_sample_size,
        sample_size=plan.sample_size, accept=plan.accept, reject=plan.reject, via_arrow=plan.via_arrow,
        seed=seed, serials=serials, resubmission=resubmission, created_at=utc_now(), created_by=user or current_user())
    store.record_qa_plan(record)
    return record


def as_sampling_plan(record: QaPlanRecord) -> SamplingPlan:
    return SamplingPlan(record.lot_size, record.level, record.aql, record.inspection, record.code_letter,
                        record.plan_letter, record.table_sample_size, record.sample_size, record.accept,
                        record.reject, record.via_arrow)


# ---------------------------------------------------------------- release gate
def release_check(store: Store, batch_id: str) -> dict[str, Any]:
    """The manifest header's ``qa`` field for an accepted batch; StateError when QA has not accepted it."""
    store.batch(batch_id)  # an unknown batch is not found, not "without QA"
    plan = store.qa_plan(batch_id)
    decision = store.qa_decision(batch_id)
    hint = "; to release anyway: tagsmith manifest export --without-qa --reason TEXT"
    if plan is None:
        raise StateError(f"batch {batch_id} has no QA plan or decision{hint}")
    if decision is None or decision.plan_id != plan.id:
        raise StateError(f"batch {batch_id} has no QA decision yet (plan {plan.id}){hint}")
    if decision.decision != QaDecision.ACCEPT:
        raise StateError(f"batch {batch_id} was rejected by QA (plan {plan.id}: {decision.defects} defect(s), "
                         f"reject at {plan.reject}){hint}")
    size = len(lot_units(store, batch_id))
    if size != plan.lot_size:
        raise StateError(f"batch {batch_id} has {size} encoded units, QA sampled a lot of {plan.lot_size}: "
                         f"draw a new plan (tagsmith qa plan --batch {batch_id} --new){hint}")
    return {"decision": QaDecision.ACCEPT, "plan_id": plan.id, "aql": plan.aql, "level": plan.level,
            "sample_size": plan.sample_size, "defects": decision.defects, "decided_at": decision.decided_at,
            "decided_by": decision.decided_by}


def release_override(store: Store, batch_id: str, reason: str | None, user: str | None = None) -> dict[str, Any]:
    """The header's ``qa`` field for a release without accepted QA (recorded once exported)."""
    if not reason or not reason.strip():
        raise ConfigError("--without-qa needs --reason TEXT (it is recorded in the manifest and the database)")
    store.batch(batch_id)
    decision = store.qa_decision(batch_id)
    return {"decision": QaDecision.OVERRIDE, "reason": reason.strip(), "by": user or current_user(), "at": utc_now(),
            "qa_decision": decision.decision if decision else None,
            "plan_id": decision.plan_id if decision else None}
