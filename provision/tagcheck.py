"""Check one unit from the source the operator names: a tapped URL, a simulated chip, or a tag on a reader."""

from __future__ import annotations

from typing import Any

from tagsmith import NotFoundError
from tagsmith.provision.check import CheckReport, check_connection, check_url
from tagsmith.workspace import Workspace


def check_simulated(store: Any, keys: Any, workspace: Workspace, uid: bytes) -> CheckReport:
    """Place the workspace's simulated chip ``uid`` and check it as a phone would; the chip's new state is kept."""
    from tagsmith.provision.simpool import sim_pool

    pool = sim_pool(workspace)
    if uid not in pool.uids():
        raise NotFoundError(f"no simulated chip {uid.hex().upper()} in this workspace")
    chip = pool.load(uid)
    chip.place()
    report = check_connection(store, keys, chip, allow_simulator_signature=True)
    pool.save(chip)
    return report


def check_on_reader(store: Any, keys: Any, reader: str | None, wait: float, allow_simulator_signature: bool) -> CheckReport:
    """Wait for a tag on ``reader`` and check it as a phone would."""
    from tagsmith.encoders.reader import open_reader

    with open_reader(reader) as device, device.wait_for_tag(wait) as connection:
        return check_connection(store, keys, connection, allow_simulator_signature=allow_simulator_signature)


def check_unit(store: Any, keys: Any, workspace: Workspace, *, url: str | None, sim: bytes | None,
               reader: str | None, wait: float, allow_simulator_signature: bool) -> CheckReport:
    """Check the unit a URL, a simulated chip or a tag on a reader shows (exactly one of them is given)."""
    if url is not None:
        return check_url(store, keys, url)
    if sim is not None:
        return check_simulated(store, keys, workspace, sim)
    return check_on_reader(store, keys, reader, wait, allow_simulator_signature)
