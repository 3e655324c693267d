"""Upload a signed manifest to the platform: idempotent by manifest id, retried with backoff.

Protocol (ours to define; docs/manifest.md): one ``POST`` of the manifest bytes to the given URL
with the signature in a header and ``Idempotency-Key: <manifest id>``. The platform answers
200/201 with a JSON receipt; the same key with the same SHA-256 returns the same receipt, with
a different SHA-256 409. A network failure or 408/429/5xx is retried by sending the whole
manifest again (exponential backoff, Retry-After honoured): resuming is re-sending, which the
idempotency key makes safe. The token comes only from ``TAGSMITH_UPLOAD_TOKEN``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tagsmith import ConfigError, StateError, TagsmithError, VerificationError

from .manifest import Verifier, signature_path
from .store import Store
from .verify import check_signature, read_header

log = logging.getLogger(__name__)
TOKEN_ENV = "TAGSMITH_UPLOAD_TOKEN"
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class UploadError(TagsmithError):
    """The platform could not be reached or kept failing after every retry."""


def check_url(url: str) -> str:
    """HTTPS only; plain HTTP is allowed to this machine (tests, a local relay)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"upload URL must not carry credentials (they would be logged and recorded): "
                          f"give the token in {TOKEN_ENV}")
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return url
    raise ConfigError(f"upload URL {url!r} must be https:// (plain http only to localhost)")


def upload_manifest(path: str | Path, url: str, *, verifier: Verifier, store: Store | None = None,
                    attempts: int = 6, backoff: float = 0.5, timeout: float = 60.0,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Send the manifest and its signature (checked with ``verifier`` first); return the platform's receipt."""
    path, url = Path(path), check_url(url)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"set {TOKEN_ENV} to the platform's upload token")
    sig, sha256 = check_signature(path, verifier=verifier)  # never send a manifest that does not verify here
    fmt, header = read_header(path)
    manifest_id = header["manifest_id"]
    headers = {
        "Authorization": f"Bearer {token}", "Idempotency-Key": manifest_id,
        "Content-Type": "application/x-ndjson" if fmt == "jsonl" else "text/csv",
        "Content-Length": str(path.stat().st_size), "X-Tagsmith-Manifest-Id": manifest_id,
        "X-Tagsmith-Sha256": sha256,
        "X-Tagsmith-Signature": base64.b64encode(signature_path(path).read_bytes()).decode(),
    }
    receipt = _post_manifest(path, url, headers, attempts, backoff, timeout, sleep)
    if receipt.get("manifest_id") != manifest_id or receipt.get("sha256") != sha256:
        raise VerificationError(f"the platform's receipt does not match manifest {manifest_id}: {receipt}")
    if store is not None and store.manifest(manifest_id) is not None:
        store.record_upload(manifest_id, url, receipt)
    return receipt


def request_with_retries(method: str, url: str, headers: dict[str, str], body: Callable[[], Any] | None, *,
                        attempts: int, backoff: float, timeout: float, sleep: Callable[[float], None],
                        refused: Callable[[int], TagsmithError]) -> tuple[int, Any, bytes]:
    """(status, headers, body) of the first answer not worth retrying: the one retry policy of every upload.

    ``body`` opens the request body anew for each attempt (a file, streamed, or a bytes buffer).
    401/403 raise ``refused(code)``; a network failure or 408/425/429/5xx is tried again with
    exponential backoff (Retry-After honoured) until ``attempts`` run out, an UploadError.
    """
    last = "no attempt made"
    for attempt in range(1, attempts + 1):
        delay = min(backoff * 2 ** (attempt - 1), 30.0)
        try:
            with body() if body is not None else nullcontext(None) as data:
                request = urllib.request.Request(url, data=data, headers=headers, method=method)
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise refused(exc.code) from None
            if exc.code not in RETRY_STATUS:
                return exc.code, exc.headers, exc.read()
            last = f"HTTP {exc.code}"
            retry_after = exc.headers.get("Retry-After", "")
            delay = float(retry_after) if retry_after.isdigit() else delay
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < attempts:
            log.info("%s %s attempt %d failed (%s); retrying in %.1f s", method, url, attempt, last, delay)
            sleep(delay)
    raise UploadError(f"{method} {url} failed after {attempts} attempts: {last}")


def _post_manifest(path: Path, url: str, headers: dict[str, str], attempts: int, backoff: float,
                   timeout: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    """POST the manifest (retried as above); the platform's receipt."""
    status, _, answer = request_with_retries(
        "POST", url, headers, lambda: open(path, "rb"), attempts=attempts, backoff=backoff, timeout=timeout,
        sleep=sleep, refused=lambda code: ConfigError(f"the platform refused the upload token ({code})"))
    detail = answer.decode("utf-8", "replace")[:200]
    if status == 409:
        raise StateError(f"the platform already holds manifest {headers['Idempotency-Key']} "
                         f"with different content: {detail}")
    if status >= 400:
        raise UploadError(f"the platform rejected the manifest: HTTP {status} {detail}")
    try:  # accepted: a receipt that does not parse is not worth a retry
        receipt: dict[str, Any] = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UploadError(f"the platform accepted the upload but its receipt is not JSON: "
                          f"{answer[:80].decode('utf-8', 'replace')!r}") from None
    return receipt
