"""resolver export: the GS1 Resolver CE v3 data entry of a batch's product, one templated entry for every serial."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tagsmith.batches.product import load_product, parse_product
from tagsmith.batches.resolver_ce import resolver_ce_entries
from tagsmith.cli import app

from .conftest import PRODUCT

runner = CliRunner()


def test_export_of_the_shipped_product(rough_batch, tmp_path):
    out = tmp_path / "resolver.json"
    result = runner.invoke(app, ["--home", str(rough_batch.home), "resolver", "export", "--batch", "B1",
                                 "--format", "gs1-resolver-ce", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(out.read_text())
    assert entry["anchor"] == "/01/09506000134376" and entry["qualifiers"] == [{"21": "{serialnumber}"}]
    assert entry["defaultLinktype"] == "gs1:pip" and entry["itemDescription"] == "Aurora DW-600 Dishwasher"
    assert [link["linktype"] for link in entry["links"]] == ["gs1:pip", "gs1:registerProduct"]
    assert all({"linktype", "href", "title", "type", "hreflang"} <= set(link) for link in entry["links"])
    assert json.loads(result.stdout)["links"] == 2


def test_lot_in_url_adds_the_lot_qualifier_and_no_links_is_refused(tmp_path):
    text = PRODUCT.read_text()
    with_lot = text.replace("lot_in_url = false", "lot_in_url = true").replace(
        "/01/{gtin}/21/{serial}?", "/01/{gtin}/10/{lot}/21/{serial}?")
    (entry,) = resolver_ce_entries(parse_product(with_lot.encode()))
    assert entry["qualifiers"] == [{"10": "{lotnumber}"}, {"21": "{serialnumber}"}]
    bare = parse_product(text[:text.index("[[links]]")].encode())
    try:
        resolver_ce_entries(bare)
    except Exception as exc:
        assert getattr(exc, "exit_code", None) == 2 and "[[links]]" in str(exc)
    else:
        raise AssertionError("a product without links was exported")


def test_unknown_format_is_refused(rough_batch, tmp_path):
    result = runner.invoke(app, ["--home", str(rough_batch.home), "resolver", "export", "--batch", "B1",
                                 "--format", "csv", "--out", str(tmp_path / "x")])
    assert result.exception.exit_code == 2 and not (tmp_path / "x").exists()


def test_product_file_fields_are_checked():
    base = PRODUCT.read_text()
    for bad, message in (('gln = "9506000134000"', 'gln = "9506000134001"'),
                         ('linktype = "gs1:pip"', 'linktype = "pip"'),
                         ('company_prefix_length = 7', 'company_prefix_length = 3')):
        try:
            parse_product(base.replace(*([bad, message])).encode(), "p.toml")
        except Exception as exc:
            assert getattr(exc, "exit_code", None) == 2 and str(exc).startswith("p.toml: ")
        else:
            raise AssertionError(message)
    assert load_product(PRODUCT).epcis.location("st1") == "urn:epc:id:sgln:9506000.13400.st1"
