"""Encryption at rest of victims' contact details, with key rotation."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, select, update

from terugkeer.config import Settings, get_settings
from terugkeer.detention.contacts import rotate, victim_contact
from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.quarantine import list_quarantine
from terugkeer.detention.tables import feed_events, quarantine, victims
from terugkeer.security.accounts import add_user, sign_in, totp_secret
from terugkeer.security.actor import Actor
from terugkeer.security.crypto import (
    DecryptError,
    FieldCipher,
    KeyConfigError,
    check_production_settings,
    cipher_from_settings,
    field_cipher,
    generate_key,
    open_body,
    parse_keys,
    reload_keys,
)
from terugkeer.security.tables import users
from tests.conftest import metadata
from tests.feedutil import intake, lines, msg

PASSWORD = "een heel lang wachtwoord"

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
    # the contact details and the victim registration's raw message
    assert (report.active_key, report.rewritten, report.already_current) == ("k2", 2, 0)
    assert report.parts["victims.contact"] == (1, 0)
    assert report.parts["feed_events.body"] == (1, 0)
    assert rotate(engine, dev_and_new, actor=TEST).already_current == 2
    assert (
        victim_contact(engine, "V1", cipher(f"k2:{K2}"), actor=TEST)["email"] == "een@example.org"
    )


# -- personal data only where it is protected (issue 13, findings 1 and 4) ----------------------

SECRET_NAME = "Slachtoffer Geheimhouding"
SECRET_EMAIL = "geheim.slachtoffer@example.org"
SECRET_PHONE = "0612349876"
SECRET_ADDRESS = "Verstopstraat 17, Ergens"
QUARANTINE_BSN = "123456782"  # passes the 11-proef; only ever in refused or parked messages


def in_clear(engine: Engine, needles: list[str]) -> list[str]:
    """Every (table.column) of the store holding one of ``needles`` in clear."""
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    text = str(value)
                    found += [f"{table.name}.{column}: {n}" for n in needles if n in text]
    return found


def use_key_file(path: Path, spec: str) -> None:
    """Write the key file; a new modification time, as an editor or a deployment gives."""
    path.write_text(spec + "\n", encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "keys"
    use_key_file(path, f"k1:{K1}")
    monkeypatch.setenv("TERUGKEER_ENCRYPTION_KEYS_FILE", str(path))
    get_settings.cache_clear()
    reload_keys()
    yield path
    monkeypatch.delenv("TERUGKEER_ENCRYPTION_KEYS_FILE")
    get_settings.cache_clear()
    reload_keys()


def test_no_personal_data_in_clear_after_ingest_quarantine_and_rotation(
    engine: Engine, key_file: Path
) -> None:
    contact = {
        "name": SECRET_NAME,
        "email": SECRET_EMAIL,
        "phone": SECRET_PHONE,
        "address": SECRET_ADDRESS,
    }
    victim = dict(source="OM-IDV", relation="victim", spoke_in_court=True, wants_information=True)
    add_user(engine, "idv", "idv_officer", PASSWORD)
    secret = totp_secret(engine, "idv")
    assert secret is not None
    ingest_text(
        engine,
        lines(
            intake("e1"),
            msg("victim_registered", "v1", 2, victim_ref="V1", contact=contact, **victim),
            # parked: its period has no intake yet
            msg("victim_registered", "v2", 2, "P9", victim_ref="V2", contact=contact, **victim),
            # refused: a name too long, the value kept for the operator
            msg(
                "victim_registered", "v3", 2, victim_ref="V3", **victim,
                contact={**contact, "name": SECRET_NAME + "x" * 300},
            ),
            # parked: a reconviction of a person with no detention on record, by BSN
            msg(
                "reconviction", "r1", 3, None, bsn=QUARANTINE_BSN, source="JUSTID-JD",
                case_ref="C1", offence_date="2026-01-01", category="overig_geweld",
                statutory_max_years=4, decision="conviction", custodial=True,
            ),
            # refused: an unknown source
            msg("intake", "x1", 1, "P8", bsn=QUARANTINE_BSN, source="NERGENS"),
        ),
    )  # fmt: skip
    needles = [SECRET_NAME, SECRET_EMAIL, SECRET_PHONE, SECRET_ADDRESS, QUARANTINE_BSN, secret]
    assert in_clear(engine, needles) == []
    # the quarantine shows what it holds, decrypted, to whoever may read it
    shown = " ".join(e.raw + (e.value or "") for e in list_quarantine(engine, actor=TEST).items)
    assert QUARANTINE_BSN in shown
    assert SECRET_EMAIL in shown
    assert SECRET_NAME in shown

    # a row written before raw messages were encrypted: rotation encrypts it
    with engine.begin() as conn:
        plain = open_body(
            conn.execute(
                select(feed_events.c.body).where(feed_events.c.event_id == "v1")
            ).scalar_one(),
            "v1",
        )
        conn.execute(update(feed_events).where(feed_events.c.event_id == "v1").values(body=plain))
    assert in_clear(engine, needles) != []

    # rotation: a new key in, everything re-encrypted by `keys rotate` (another process), the
    # old key out; this process (a running server) is not restarted
    running = field_cipher()
    assert running.active_id == "k1"
    use_key_file(key_file, f"k1:{K1}\nk2:{K2}")
    report = rotate(engine, cipher_from_settings(get_settings()), actor=TEST)
    assert report.active_key == "k2"
    assert report.parts["users.totp_secret"] == (1, 0)
    assert report.parts["victims.contact"] == (1, 0)
    assert report.parts["feed_events.body"][0] >= 1
    use_key_file(key_file, f"k2:{K2}")
    assert field_cipher().keys == (("k2", parse_keys(f"k2:{K2}")[0][1]),)

    assert in_clear(engine, needles) == []
    with engine.connect() as conn:
        for stored in (
            conn.execute(select(victims.c.contact)).scalar_one(),
            conn.execute(select(users.c.totp_secret).where(users.c.name == "idv")).scalar_one(),
            *conn.execute(select(quarantine.c.raw)).scalars(),
            *conn.execute(
                select(feed_events.c.body).where(feed_events.c.kind == "victim_registered")
            ).scalars(),
        ):
            assert stored.startswith("enc:v1:k2:")
    # sign-in with the second factor and the victim's contact details work under the new key
    session = sign_in(engine, "idv", PASSWORD, "10.0.0.1", pyotp.TOTP(secret).now())
    assert session.principal.name == "idv"
    assert victim_contact(engine, "V1", actor=TEST)["phone"] == SECRET_PHONE
    # the parked reconviction still wakes when its person arrives (its digest was re-keyed)
    result = ingest_text(engine, lines(intake("e9", 5, "P3", bsn=QUARANTINE_BSN)))
    assert (result.applied, result.unparked) == (1, 1)
    reasons = sorted(e.reason for e in list_quarantine(engine, actor=TEST).items)
    assert reasons == ["invalid_value", "unknown_institution", "unknown_period"]


def test_a_running_process_reads_a_changed_key_file(key_file: Path) -> None:
    sealed = field_cipher().encrypt("geheim", "c")
    use_key_file(key_file, f"k1:{K1}, k2:{K2}")
    assert field_cipher().active_id == "k2"
    assert field_cipher().decrypt(sealed, "c") == "geheim"
    use_key_file(key_file, f"k2:{K2}")
    with pytest.raises(DecryptError, match="no configured key"):
        field_cipher().decrypt(sealed, "c")


def test_a_missing_key_file_stops_the_start(tmp_path: Path) -> None:
    settings = Settings(environment="production", encryption_keys_file=str(tmp_path / "none"))
    with pytest.raises(KeyConfigError, match="cannot be read"):
        check_production_settings(settings)


def test_a_running_server_follows_a_rotation_without_a_restart(
    engine: Engine, key_file: Path
) -> None:
    """Issue 13, finding 4: after `keys rotate` and the old key's retirement, a server started
    before signs in the IDV (second factor) and shows a victim's contact details."""
    from fastapi.testclient import TestClient

    from terugkeer.web.app import create_app

    add_user(engine, "idv", "idv_officer", PASSWORD)
    secret = totp_secret(engine, "idv")
    assert secret is not None
    victim = msg(
        "victim_registered", "v1", 2, source="OM-IDV", victim_ref="V1", relation="victim",
        spoke_in_court=True, wants_information=True, contact={"name": SECRET_NAME},
    )  # fmt: skip
    ingest_text(engine, lines(intake("e1"), victim))
    client = TestClient(create_app(engine))  # started under k1

    use_key_file(key_file, f"k1:{K1}\nk2:{K2}")
    rotate(engine, cipher_from_settings(get_settings()), actor=TEST)  # another process
    use_key_file(key_file, f"k2:{K2}")

    code = pyotp.TOTP(secret).now()
    signed_in = client.post(
        "/api/v1/sessies", json={"naam": "idv", "wachtwoord": PASSWORD, "code": code}
    )
    assert signed_in.status_code == 201, signed_in.text
    contact = client.get("/api/v1/slachtoffers/V1/contactgegevens")
    assert contact.status_code == 200, contact.text
    assert contact.json()["name"] == SECRET_NAME
