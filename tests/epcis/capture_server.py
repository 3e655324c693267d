"""A small EPCIS 2.0 capture interface on 127.0.0.1 for the tests: limits, jobs, partial rejection, deduplication."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "capture-test-token"


@dataclass
class Repository:
    """What the server holds and how it behaves; the tests read and set it."""

    max_events: int | None = None
    max_bytes: int | None = None
    discovery: bool = True  # OPTIONS /capture answers with the limits (else 405: only a 413 tells them)
    reject: set[str] = field(default_factory=set)  # event ids refused with a validation error
    fail_first_posts: int = 0  # answer 503 to this many POSTs first
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # eventID -> event: duplicates dropped
    posts: list[int] = field(default_factory=list)  # body sizes of the accepted POSTs
    counts: list[int] = field(default_factory=list)  # events in each accepted POST
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: int = 0


def serve(repository: Repository) -> tuple[ThreadingHTTPServer, str]:
    """Start the server in a thread; (server, base URL). Call server.shutdown() when done."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            if data:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def _limits(self) -> dict[str, str]:
            named = {"GS1-EPCIS-Capture-Limit": repository.max_events, "GS1-EPCIS-Capture-File-Size-Limit":
                     repository.max_bytes}
            return {k: str(v) for k, v in named.items() if v}

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"type": "epcisException:SecurityException"})
                return False
            return True

        def do_OPTIONS(self) -> None:
            if self._authorised():
                self._send(204, None, self._limits()) if repository.discovery else self._send(405)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not self._authorised():
                return
            if repository.fail_first_posts:
                repository.fail_first_posts -= 1
                self._send(503, None, {"Retry-After": "0"})
                return
            events = json.loads(body)["epcisBody"]["eventList"]
            if (repository.max_bytes and len(body) > repository.max_bytes) or \
                    (repository.max_events and len(events) > repository.max_events):
                self._send(413, {"type": "epcisException:CaptureLimitExceededException"}, self._limits())
                return
            repository.posts.append(len(body))
            repository.counts.append(len(events))
            errors = []
            for event in events:
                if event["eventID"] in repository.reject:
                    errors.append({"eventID": event["eventID"], "type": "epcisException:ValidationException",
                                   "detail": "readPoint not registered"})
                else:
                    repository.events.setdefault(event["eventID"], event)
            job_id = f"job{len(repository.jobs) + 1}"
            repository.jobs[job_id] = {"captureID": job_id, "running": False, "success": not errors,
                                       "captureErrorBehaviour": self.headers.get("GS1-Capture-Error-Behaviour",
                                                                                 "rollback"), "errors": errors}
            self._send(202, None, {"Location": f"/capture/{job_id}"})

        def do_GET(self) -> None:
            if not self._authorised():
                return
            job = repository.jobs.get(self.path.rsplit("/", 1)[-1])
            if job is None:
                self._send(404)
                return
            repository.polls += 1
            job["_polls"] = job.get("_polls", 0) + 1
            shown = {k: v for k, v in job.items() if not k.startswith("_")}
            self._send(200, {**shown, "running": True} if job["_polls"] == 1 else shown)  # still running at first

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
