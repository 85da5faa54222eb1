"""Contact details are facts people act on: each must stand in the sourced facts file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FACTS = Path(__file__).resolve().parents[2] / "shared" / "kassel-facts.yaml"

pytestmark = pytest.mark.skipif(not FACTS.exists(), reason="needs ../shared/kassel-facts.yaml beside the checkout")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.fixture(scope="module")
def facts() -> str:
    return FACTS.read_text(encoding="utf-8")


def test_every_phone_number_is_sourced(catalogue, facts):
    known = _digits(facts.replace("\n", " "))
    for office in catalogue.offices.values():
        if office.phone:
            assert _digits(office.phone) in known, office.id


def test_every_email_and_website_is_sourced(catalogue, facts):
    folded = facts.replace("(at)", "@")
    for office in catalogue.offices.values():
        if office.email:
            assert office.email in folded, office.id
        if office.website:
            host = re.sub(r"^https?://(www\.)?", "", office.website).rstrip("/")
            assert host in facts, office.id


def test_every_address_street_is_sourced(catalogue, facts):
    for office in catalogue.offices.values():
        if office.address:
            street = office.address.split(",")[0]
            assert street in facts, office.id


def test_every_offer_and_office_names_a_source(catalogue):
    for item in (*catalogue.offers.values(), *catalogue.offices.values()):
        assert item.source.startswith("http"), item.id
