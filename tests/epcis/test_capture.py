"""epcis capture against a capture interface on 127.0.0.1: limits honoured, jobs followed, idempotent, rejections told."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tagsmith.batches.store import open_store
from tagsmith.cli import app

from .capture_server import TOKEN, Repository, serve

runner = CliRunner()


@pytest.fixture
def document(rough_batch, tmp_path):
    out = tmp_path / "b1.jsonld"
    result = runner.invoke(app, ["--home", str(rough_batch.home), "epcis", "export", "--batch", "B1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def repository():
    repo = Repository()
    server, url = serve(repo)
    repo.url = url
    yield repo
    server.shutdown()


def capture(ws, document, url, *extra, token=TOKEN):
    env = {"TAGSMITH_EPCIS_TOKEN": token} if token else {}
    return runner.invoke(app, ["--home", str(ws.home), "epcis", "capture", str(document), "--to", url, "--json",
                               *extra], env=env)


def _events(document) -> list[dict]:
    return json.loads(document.read_text())["epcisBody"]["eventList"]


def test_capture_in_parts_to_the_event_limit_follows_jobs_and_is_idempotent(rough_batch, document, repository):
    repository.max_events = 7
    first = capture(rough_batch, document, repository.url)
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    total = len(_events(document))
    assert result["accepted"] == total and result["rejected"] == [] and result["requests"] == -(-total // 7)
    assert all(job["job"]["running"] is False for job in result["jobs"]) and repository.polls >= 2 * result["requests"]
    held = dict(repository.events)
    again = capture(rough_batch, document, repository.url + "/capture")
    assert again.exit_code == 0 and repository.events == held and len(held) == total  # nothing new: ids dedupe
    with open_store(rough_batch) as store:
        receipts = store.epcis_captures("B1")
    assert [r["accepted"] for r in receipts][-2:] == [total, total] and receipts[-1]["url"].endswith("/capture")


def test_capture_honours_the_file_size_limit(rough_batch, document, repository):
    repository.max_bytes = 6000
    result = capture(rough_batch, document, repository.url)
    assert result.exit_code == 0, result.output
    assert max(repository.posts) <= 6000 and len(repository.posts) > 1
    assert len(repository.events) == len(_events(document))


def test_a_413_without_discovery_splits_the_rest(rough_batch, document, repository):
    repository.discovery, repository.max_events = False, 4
    result = capture(rough_batch, document, repository.url)
    assert result.exit_code == 0, result.output
    assert len(repository.events) == len(_events(document)) and max(repository.counts) <= 4


def test_partial_rejection_is_reported_and_recorded(rough_batch, document, repository):
    events = _events(document)
    repository.reject = {events[0]["eventID"], events[-1]["eventID"]}
    result = capture(rough_batch, document, repository.url)
    assert result.exit_code == 1 and "rejected 2 of" in str(result.exception)
    report = json.loads(result.stdout.splitlines()[0])
    assert {r["eventID"] for r in report["rejected"]} == repository.reject
    assert all(r["detail"] == "readPoint not registered" for r in report["rejected"])
    assert len(repository.events) == len(events) - 2
    with open_store(rough_batch) as store:
        assert store.epcis_captures("B1")[-1]["rejected"] == 2


def test_unavailable_server_is_retried(rough_batch, document, repository):
    repository.fail_first_posts = 2
    result = capture(rough_batch, document, repository.url)
    assert result.exit_code == 0, result.output
    assert len(repository.events) == len(_events(document))


def test_token_and_url_rules(rough_batch, document, repository):
    assert capture(rough_batch, document, repository.url, token=None).exception.exit_code == 2
    assert capture(rough_batch, document, repository.url, token="wrong").exception.exit_code == 2
    assert capture(rough_batch, document, "http://epcis.example.com").exception.exit_code == 2  # plain http
    assert repository.events == {}
