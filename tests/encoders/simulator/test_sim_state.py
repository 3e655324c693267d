"""NvState.copy: a field-by-field deep copy must behave exactly like copy.deepcopy."""

from __future__ import annotations

import copy
import os

from tagsmith.encoders.simulator import NvState, SimulatedNtag424


def _mutable_ids(value) -> set[int]:
    """ids of every mutable container reachable from ``value`` (a copy must share none)."""
    if isinstance(value, NvState):
        return set().union(*(_mutable_ids(v) for v in vars(value).values()))
    if isinstance(value, dict):
        return {id(value)}.union(*(_mutable_ids(v) for v in value.values()))
    if isinstance(value, list):
        return {id(value)}.union(*(_mutable_ids(v) for v in value))
    if isinstance(value, bytearray):
        return {id(value)}
    return set()

def test_nvstate_copy_is_deep_and_equal():
    chip = SimulatedNtag424(uid=bytes.fromhex("04112233445566"), keys=[os.urandom(16) for _ in range(5)],
                            files={2: b"\x00\x05hello"}, sdm_read_ctr=7)
    state = chip.snapshot()
    clone = state.copy()
    assert isinstance(clone, NvState) and clone == state == copy.deepcopy(state)
    assert clone.to_dict() == state.to_dict()
    assert len(_mutable_ids(state)) > 8 and not _mutable_ids(state) & _mutable_ids(clone)
    clone.contents[2][0] = 0xFF
    clone.key_versions[1] = 9
    assert state.contents[2][0] == 0 and state.key_versions[1] == 0
