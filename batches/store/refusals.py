"""Chips that refused an authentication here: failed attempts count on the chip, so none is retried."""

from __future__ import annotations

from tagsmith import ConfigError, NotFoundError

from ..records import AuthFailure
from .common import check_uid
from .leases import LeaseQueries


class RefusalQueries(LeaseQueries):
    def record_auth_failure(self, uid: bytes, key_no: int, status: str, station: str | None) -> AuthFailure:
        """Remember that this chip refused an authentication, so no station ever tries it again.

        Real chips count failed authentications (key 0 blocks for good at the limit); the first
        record for a UID is kept while it stands, and a refusal after a clearing is recorded
        afresh. ``status`` names the chip's answer, never a key.
        """
        uid = check_uid(uid)
        with self._write():
            self._exec("INSERT INTO auth_failures (uid, key_no, status, station, at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT(uid) DO UPDATE SET key_no = excluded.key_no, status = excluded.status, "
                       "station = excluded.station, at = excluded.at, cleared_at = NULL, clear_reason = NULL "
                       "WHERE auth_failures.cleared_at IS NOT NULL", (uid, int(key_no), status, station, self._now()))
        found = self.auth_failure(uid)
        assert found is not None
        return found

    def auth_failure(self, uid: bytes) -> AuthFailure | None:
        """The standing (not cleared) record of this chip refusing an authentication here, if any."""
        row = self._one("SELECT uid, key_no, status, station, at FROM auth_failures WHERE uid = ? AND cleared_at IS NULL",
                        (check_uid(uid),))
        return AuthFailure(**row) if row else None

    def auth_failures(self, include_cleared: bool = False) -> list[AuthFailure]:
        """Every chip that refused an authentication here, newest first, with the serial its UID has (if any)."""
        where = "" if include_cleared else "WHERE f.cleared_at IS NULL"
        rows = self._exec(
            "SELECT f.uid, f.key_no, f.status, f.station, f.at, f.cleared_at, f.clear_reason, "
            "(SELECT u.serial FROM units u WHERE u.uid = f.uid ORDER BY u.state = 'voided', u.id DESC LIMIT 1) "
            f"FROM auth_failures f {where} ORDER BY f.at DESC, f.uid").fetchall()
        return [AuthFailure(bytes(r[0]), r[1], r[2], r[3], r[4], cleared_at=r[5], clear_reason=r[6], serial=r[7])
                for r in rows]

    def clear_auth_failure(self, uid: bytes, reason: str) -> AuthFailure:
        """Let stations authenticate this chip once more; the record is kept, marked cleared with ``reason``.

        For an engineer who knows why the chip refused (a tag of another line, a key changed by
        another workspace) and that trying again is safe: each refusal counts on the chip.
        """
        uid = check_uid(uid)
        if not reason or not reason.strip():
            raise ConfigError("clearing a refusal needs a reason, for the record")
        with self._write():
            cleared = self._exec("UPDATE auth_failures SET cleared_at = ?, clear_reason = ? "
                                 "WHERE uid = ? AND cleared_at IS NULL", (self._now(), reason.strip(), uid)).rowcount
            if cleared != 1:
                raise NotFoundError(f"no standing refusal recorded for tag {uid.hex().upper()}")
        return next(f for f in self.auth_failures(include_cleared=True) if f.uid == uid)
