"""Send an EPCIS document to a repository's capture interface (EPCIS 2.0 REST binding, ``/capture``).

``OPTIONS /capture`` tells the server's limits (``GS1-EPCIS-Capture-Limit`` events,
``GS1-EPCIS-Capture-File-Size-Limit`` bytes); the events are sent in as many documents as those
limits need, each ``POST /capture`` answered ``202`` with the capture job in ``Location``, which is
read until it stops running. A ``413`` names the limits too, and the rest is split again. Events keep
their content-hash ``eventID``, so sending again is safe: the repository drops what it already has.
The same transport rules as ``manifest upload`` (upload.py): the token from the environment only,
https (plain http to this machine only), network errors and 408/425/429/5xx retried with backoff.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from tagsmith import ConfigError, TagsmithError

from .upload import UploadError, check_url, request_with_retries

log = logging.getLogger(__name__)
TOKEN_ENV = "TAGSMITH_EPCIS_TOKEN"
LIMIT_EVENTS = "GS1-EPCIS-Capture-Limit"
LIMIT_BYTES = ("GS1-EPCIS-Capture-File-Size-Limit", "GS1-Capture-File-Size-Limit")  # the binding's name, and a variant
Sleep = Callable[[float], None]


@dataclass
class CaptureResult:
    """What the repository did with the document: per capture job, and the events it rejected."""

    endpoint: str
    events: int
    jobs: list[dict[str, Any]] = field(default_factory=list)  # {"location", "events", "job"}
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"eventID", "detail"}

    @property
    def accepted(self) -> int:
        return self.events - len(self.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "events": self.events, "accepted": self.accepted,
                "rejected": self.rejected, "requests": len(self.jobs), "jobs": self.jobs}


@dataclass(frozen=True)
class Transport:
    """How each HTTP request is made: token, tries, backoff, timeouts."""

    token: str
    attempts: int = 6
    backoff: float = 0.5
    timeout: float = 60.0
    sleep: Sleep = time.sleep

    def call(self, method: str, url: str, body: bytes | None = None) -> tuple[int, Any, bytes]:
        """(status, headers, body) of the first answer that is not worth retrying; 413 and 404/405 are answers."""
        headers = {"Authorization": f"Bearer {self.token}", "GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0",
                   "Accept": "application/json"}
        if body is not None:
            headers.update({"Content-Type": "application/ld+json", "GS1-Capture-Error-Behaviour": "proceed"})
        return request_with_retries(
            method, url, headers, None if body is None else lambda: nullcontext(body), attempts=self.attempts,
            backoff=self.backoff, timeout=self.timeout, sleep=self.sleep, refused=lambda code: ConfigError(
                f"the EPCIS repository refused the token ({code}): check {TOKEN_ENV}"))


def capture_endpoint(url: str) -> str:
    """The ``/capture`` resource of an EPCIS interface given by its base URL (or by the resource itself)."""
    url = check_url(url).rstrip("/")
    return url if url.endswith("/capture") else f"{url}/capture"


def token_from_env() -> str:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"set {TOKEN_ENV} to the EPCIS repository's token")
    return token


def capture_document(document: dict[str, Any], url: str, transport: Transport, *, poll: float = 0.2,
                     max_wait: float = 600.0) -> CaptureResult:
    """Capture every event of ``document``, in parts as the server's limits need; follow each job to its end."""
    endpoint = capture_endpoint(url)
    events: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    result = CaptureResult(endpoint, len(events))
    max_events, max_bytes = _limits(*transport.call("OPTIONS", endpoint)[:2])
    pending = list(events)
    while pending:
        part, pending = _next_part(document, pending, max_events, max_bytes)
        status, headers, answer = transport.call("POST", endpoint, _body(document, part))
        if status == 413:  # the limits it names now, and at most half as many events: every retry is smaller
            if len(part) == 1:
                raise UploadError(f"the EPCIS repository refuses even one event as too large: {_text(answer)}")
            named_events, named_bytes = _limits(status, headers)
            max_events = max(1, min(named_events or len(part), len(part) // 2))
            max_bytes = named_bytes or max_bytes
            pending = part + pending
            continue
        if status not in (200, 201, 202):
            raise UploadError(f"the EPCIS repository rejected the capture: HTTP {status} {_text(answer)}")
        location = headers.get("Location")
        job = _follow(transport, urljoin(endpoint, location), poll, max_wait) if location else {"success": True}
        result.jobs.append({"location": location, "events": len(part), "job": job})
        result.rejected += _rejected(job, part)
    return result


def _limits(status: int, headers: Any) -> tuple[int | None, int | None]:
    """The capture limits a discovery (204) or a 413 names; None where it names none."""
    if headers is None or status not in (200, 204, 413):
        return None, None

    def number(*names: str) -> int | None:
        for name in names:
            value = str(headers.get(name) or "").strip()
            if value.isdigit() and int(value) > 0:
                return int(value)
        return None

    return number(LIMIT_EVENTS), number(*LIMIT_BYTES)


def _body(document: dict[str, Any], events: list[dict[str, Any]]) -> bytes:
    part = {**document, "epcisBody": {"eventList": events}}
    return json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _next_part(document: dict[str, Any], events: list[dict[str, Any]], max_events: int | None,
               max_bytes: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The longest run of events from the front that fits both limits, and the rest."""
    size = len(_body(document, []))
    count = 0
    for event in events[:max_events or len(events)]:
        grows = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) + (1 if count else 0)
        if max_bytes is not None and size + grows > max_bytes:
            break
        size, count = size + grows, count + 1
    if count == 0:
        raise UploadError(f"one event alone is larger than the EPCIS repository's capture size limit ({max_bytes} bytes)")
    return events[:count], events[count:]


def _follow(transport: Transport, job_url: str, poll: float, max_wait: float) -> dict[str, Any]:
    """Read the capture job until it stops running (``running`` false); its last state."""
    waited = 0.0
    while True:
        status, _, answer = transport.call("GET", job_url)
        if status != 200:
            raise UploadError(f"cannot read the capture job {job_url}: HTTP {status} {_text(answer)}")
        try:
            job: dict[str, Any] = json.loads(answer)
        except ValueError:
            raise UploadError(f"the capture job {job_url} is not JSON: {_text(answer)}") from None
        if not job.get("running", False):
            return job
        if waited >= max_wait:
            raise UploadError(f"the capture job {job_url} was still running after {max_wait:.0f} s")
        transport.sleep(poll)
        waited += poll
        poll = min(poll * 2, 5.0)


def _rejected(job: dict[str, Any], part: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``part`` a finished job did not keep, with the server's reason."""
    if job.get("success", True):
        return []
    errors = [e for e in job.get("errors") or [] if isinstance(e, dict)]
    named = [{"eventID": e["eventID"], "detail": str(e.get("detail") or e.get("title") or e.get("type") or "")}
             for e in errors if e.get("eventID")]
    if named and job.get("captureErrorBehaviour", "proceed") != "rollback":
        return named
    reason = "; ".join(str(e.get("detail") or e.get("title") or e) for e in errors) or "the capture job failed"
    return [{"eventID": e.get("eventID"), "detail": reason} for e in part]  # all or nothing: every event is out


def _text(answer: bytes) -> str:
    return answer[:200].decode("utf-8", "replace")


class CaptureRejectedError(TagsmithError):
    """The repository finished the capture but kept not every event (each one is printed with its reason)."""
