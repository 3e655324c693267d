"""A tag's one key-0 authentication, in its product's secure messaging: AES, or LRP after the switch.

An LRP product's chip is switched (SetConfiguration option 05) inside the AES transaction opened
with the factory key 0, before any other write, then authenticated again over LRP
(docs/reference/lrp.md §7). The switch is journaled as the step ``lrp``. A chip torn after the
switch answers AES authentication 919D on its next placement: the journal's ``lrp`` step sends the
station straight to LRP, and a switch whose journal step was lost is told by that 919D.
"""

from __future__ import annotations

from tagsmith import StateError
from tagsmith.batches.store import StepJournal, Store
from tagsmith.encoders.ntag424.channel import SecureMessaging
from tagsmith.encoders.ntag424.errors import (
    AuthenticationDelayError,
    AuthenticationError,
    LrpModeError,
    PermissionDeniedError,
)
from tagsmith.encoders.ntag424.session import Ntag424Session

#: the journal step of the switch to LRP
LRP_STEP = "lrp"


class TagRefused(StateError):
    """The tag is set aside without being written: foreign, counterfeit, or not for this batch."""

    def __init__(self, message: str, uid: bytes = b"") -> None:
        super().__init__(message)
        self.uid = uid  # the chip's UID when it was read before the refusal (for the operator)


def lrp_switch_journaled(store: Store, unit_id: int) -> bool:
    """Whether a placement journaled this unit's chip as switched to LRP."""
    return any(e.event == "step" and e.detail is not None and e.detail.get("step") == LRP_STEP
               for e in store.unit_events(unit_id))


def authenticate_once(store: Store, session: Ntag424Session, uid: bytes, key: bytes, station: str,
                      what: str, *, lrp: bool = False, switched: bool = False) -> SecureMessaging:
    """The tag's one authentication with key 0; the mode it ran in. A refusal is recorded and the tag set aside.

    ``what`` says what a refusal means for this tag, for the operator. ``lrp``: the product's chips
    run LRP, so a chip that answers AES authentication 919D (already switched) is authenticated
    over LRP instead; ``switched``: the journal says it was, so AES is not tried at all.
    A chip counts failed authentications and blocks key 0 for good at its limit, so a chip that
    refuses the key (91AE), is already delaying wrong-key attempts (91AD) or runs LRP (919D) for an
    AES product is remembered by UID and never authenticated by any station again. Any other
    status (a memory error, an aborted exchange) is no verdict on the key: it fails this placement only.
    """
    try:
        if not switched:
            try:
                session.authenticate_ev2_first(0, key)
                return SecureMessaging.AES
            except LrpModeError:
                if not lrp:
                    raise
        session.authenticate_lrp_first(0, key)
        return SecureMessaging.LRP
    except (AuthenticationError, AuthenticationDelayError, PermissionDeniedError) as exc:
        store.record_auth_failure(uid, 0, f"{exc.sw:04X}", station)
        raise TagRefused(f"{what} (status {exc.sw:04X}): set aside, never authenticated again") from None


def switch_to_lrp(store: Store, session: Ntag424Session, uid: bytes, key: bytes, journal: StepJournal,
                  station: str, what: str) -> None:
    """Switch the chip in the AES key-0 session to LRP for good, journal it, and authenticate over LRP.

    The unit's allocation is made durable first: a chip switched for good must never be a UID the
    database forgot (it would answer the next placement's AES authentication 919D, as a foreign chip).
    """
    store.wait_synced()
    session.enable_lrp(confirm_irreversible=True)
    journal.add(LRP_STEP)
    authenticate_once(store, session, uid, key, station, what, lrp=True, switched=True)
