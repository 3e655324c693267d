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


def test_a_sheet_is_decoded_cell_by_cell_without_whole_page_passes(make_units, tmp_path, label_tools):
    units = make_units(60)  # A4 24-up: two full pages and half a third
    layout = load_layout("a4-24up-70x37")
    render_pdf(units, layout, tmp_path / "sheet.pdf")
    calls = []
    report = check_pdf(tmp_path / "sheet.pdf", {u.url: u.serial for u in units}, layout,
                       lambda done, total, what: calls.append((done, total, what)))
    assert report.ok and len(report.found) == 60 and report.pages == 3
    assert report.passes == 1  # every code came from its own cell: no page was decoded whole
    assert {what for _, _, what in calls} == {"label cells"} and calls[-1][:2] == (3, 3)
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)


def test_whole_page_passes_only_for_pages_with_an_empty_cell(make_units, tmp_path, label_tools):
    units = make_units(48)
    layout = load_layout("a4-24up-70x37")
    render_pdf(units[:30] + units[31:], layout, tmp_path / "gap.pdf")  # page 1 full, page 2 one short
    calls = []
    report = check_pdf(tmp_path / "gap.pdf", {u.url: u.serial for u in units}, layout,
                       lambda done, total, what: calls.append((total, what)))
    assert report.missing == (units[30].serial,) and len(report.found) == 47
    whole = [total for total, what in calls if what != "label cells"]
    assert whole and set(whole) == {1}  # the missing unit sent only page 2 through the whole-page passes


def test_a_pdf_of_another_layout_is_still_checked_by_whole_pages(make_units, tmp_path, label_tools):
    units = make_units(10)
    render_pdf(units, load_layout("a4-24up-70x37"), tmp_path / "sheet.pdf")
    report = check_pdf(tmp_path / "sheet.pdf", {u.url: u.serial for u in units}, load_layout("roll-50x25"))
    assert report.ok and len(report.found) == 10 and report.passes >= 2  # one roll "cell" per page: the rest whole
