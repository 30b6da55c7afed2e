"""Encryption at rest of victims' contact details, with key rotation."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import Engine, select

from terugkeer.config import Settings
from terugkeer.detention.contacts import rotate, victim_contact
from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import victims
from terugkeer.security.actor import Actor
from terugkeer.security.crypto import (
    DecryptError,
    FieldCipher,
    KeyConfigError,
    check_production_settings,
    cipher_from_settings,
    generate_key,
    parse_keys,
)
from tests.feedutil import intake, lines, msg

TEST = Actor.system("test", "testing")

K1, K2 = generate_key(), generate_key()


def cipher(spec: str) -> FieldCipher:
    return FieldCipher(tuple(parse_keys(spec)))


def test_round_trip_is_bound_to_its_row() -> None:
    c = cipher(f"k1:{K1}")
    sealed = c.encrypt('{"name": "Slachtoffer 1"}', "victims.contact:V1")
    assert sealed.startswith("enc:v1:k1:")
    assert "Slachtoffer" not in sealed
    assert c.decrypt(sealed, "victims.contact:V1") == '{"name": "Slachtoffer 1"}'
    with pytest.raises(DecryptError):
        c.decrypt(sealed, "victims.contact:V2")  # copied to another row
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptError):
        c.decrypt(tampered, "victims.contact:V1")
    assert c.encrypt("x", "c") != c.encrypt("x", "c")  # a fresh nonce each time


def test_older_keys_still_decrypt_and_the_newest_encrypts() -> None:
    old = cipher(f"k1:{K1}")
    both = cipher(f"k1:{K1},k2:{K2}")
    sealed = old.encrypt("a", "c")
    assert both.decrypt(sealed, "c") == "a"
    assert both.key_id_of(both.encrypt("a", "c")) == "k2"
    with pytest.raises(DecryptError, match="no configured key"):
        cipher(f"k2:{K2}").decrypt(sealed, "c")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("k1:change-me", "placeholder"),
        ("k1:" + base64.urlsafe_b64encode(b"short").decode(), "32 bytes"),
        ("k1:" + base64.urlsafe_b64encode(bytes(32)).decode(), "all zeros"),
        (f"k1:{K1},k1:{K2}", "twice"),
        (K1, "id:base64key"),
    ],
)
def test_bad_keys_are_refused(spec: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        parse_keys(spec)


def test_outside_development_a_missing_or_development_key_stops_the_start() -> None:
    check_production_settings(Settings(environment="development"))  # dev key allowed
    with pytest.raises(KeyConfigError, match="not set"):
        check_production_settings(Settings(environment="production"))
    with pytest.raises(KeyConfigError, match="placeholder"):
        check_production_settings(Settings(environment="production", encryption_keys="k:secret"))
    check_production_settings(Settings(environment="production", encryption_keys=f"k1:{K1}"))
    assert (
        cipher_from_settings(Settings(environment="test", encryption_keys=f"k1:{K1}")).active_id
        == "k1"
    )


def test_contact_details_are_stored_encrypted_and_rotated(engine: Engine) -> None:
    victim = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=True, wants_information=True,
        contact={"name": "Slachtoffer Een", "email": "een@example.org"},
    )  # fmt: skip
    ingest_text(engine, lines(intake("e1"), victim))
    with engine.connect() as conn:
        stored = conn.execute(select(victims.c.contact)).scalar_one()
    assert "Slachtoffer Een" not in stored
    assert "example.org" not in stored
    assert victim_contact(engine, "V1", actor=TEST)["name"] == "Slachtoffer Een"  # development key

    dev_and_new = FieldCipher(
        (*cipher_from_settings(Settings()).keys, ("k2", parse_keys(f"k2:{K2}")[0][1]))
    )
    report = rotate(engine, dev_and_new, actor=TEST)
    assert (report.active_key, report.rewritten, report.already_current) == ("k2", 1, 0)
    assert rotate(engine, dev_and_new, actor=TEST).already_current == 1
    assert (
        victim_contact(engine, "V1", cipher(f"k2:{K2}"), actor=TEST)["email"] == "een@example.org"
    )
