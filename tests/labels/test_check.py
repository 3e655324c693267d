"""check_pdf proves a PDF: a missing, a duplicated and a foreign label are each reported."""

from __future__ import annotations

import pytest

from tagsmith import NotFoundError
from tagsmith.labels import MissingToolError
from tagsmith.labels.check import check_pdf, normalise_url, require_tool
from tagsmith.labels.layouts import load_layout
from tagsmith.labels.pdf import render_pdf


def test_missing_and_duplicated_labels_are_reported(make_units, tmp_path, label_tools):
    units = make_units(8)
    printed = units[:3] + [units[2]] + units[4:]  # unit 3 missing, unit 2 twice
    render_pdf(printed, load_layout("a4-24up-70x37"), tmp_path / "bad.pdf")
    report = check_pdf(tmp_path / "bad.pdf", {u.url: u.serial for u in units})
    assert not report.ok
    assert report.missing == ("DW6A00003K",)
    assert report.duplicates == {"DW6A00002K": [1, 1]}
    assert report.unknown == {}
    assert len(report.found) == 6


def test_labels_of_another_batch_are_unknown(make_units, tmp_path, label_tools):
    ours, theirs = make_units(3), make_units(1, host="id.other.example")
    render_pdf(ours + theirs, load_layout("roll-50x25"), tmp_path / "mixed.pdf")
    report = check_pdf(tmp_path / "mixed.pdf", {u.url: u.serial for u in ours})
    assert list(report.unknown) == [normalise_url(theirs[0].url)] and report.unknown[normalise_url(theirs[0].url)] == [4]
    assert report.to_dict()["ok"] is False


def test_decoded_host_case_does_not_matter_but_path_case_does():
    assert normalise_url("https://ID.EXAMPLE.COM/21/AbC") == "https://id.example.com/21/AbC"
    assert normalise_url("HTTPS://Id.Example.com") == "https://id.example.com"


def test_a_missing_tool_names_its_debian_package(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(MissingToolError, match=r"^zbarimg not found: install the Debian package zbar-tools"):
        require_tool("zbarimg")


def test_a_missing_pdf_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        check_pdf(tmp_path / "none.pdf", {})
