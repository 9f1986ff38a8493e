"""Payload encryption: round trip, key rotation, tampering and bad key settings."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload

from dunflow.case import DebtorInfo
from dunflow.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadKeyError, data_converter, new_key_spec, parse_keys

OLD, NEW = new_key_spec("2025"), new_key_spec("2026")
DEBTOR = DebtorInfo(id="D-1", name="Jan de Vries", email="jan@example.nl", phone="+31612345678")


async def test_a_payload_round_trips_and_is_unreadable_on_the_way():
    converter = data_converter(NEW)
    [sealed] = await converter.encode([DEBTOR])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"2026"
    for secret in (b"Jan de Vries", b"jan@example.nl", b"+31612345678"):
        assert secret not in sealed.SerializeToString()
    [back] = await converter.decode([sealed], [DebtorInfo])
    assert back == DEBTOR


async def test_two_encryptions_of_the_same_value_differ():
    converter = data_converter(NEW)
    first, second = [(await converter.encode([DEBTOR]))[0].data for _ in range(2)]
    assert first != second  # a fresh nonce each time


async def test_rotation_old_keys_still_decrypt_and_the_first_key_encrypts():
    [old_payload] = await data_converter(OLD).encode([DEBTOR])
    rotated = data_converter(f"{NEW},{OLD}")
    [back] = await rotated.decode([old_payload], [DebtorInfo])
    assert back == DEBTOR
    [new_payload] = await rotated.encode([DEBTOR])
    assert new_payload.metadata[KEY_ID] == b"2026"
    with pytest.raises(PayloadKeyError, match="'2025', which is not in DUNFLOW_PAYLOAD_KEYS"):
        await data_converter(NEW).decode([old_payload], [DebtorInfo])


async def test_an_altered_payload_or_a_changed_key_is_refused():
    codec = EncryptionCodec(parse_keys(NEW))
    sealed = codec.encrypt(Payload(metadata={"encoding": b"json/plain"}, data=b'{"name": "Jan"}'))
    altered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        codec.decrypt(altered)
    other_key_same_id = EncryptionCodec(parse_keys(new_key_spec("2026")))
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        other_key_same_id.decrypt(sealed)


async def test_payloads_written_before_encryption_still_read():
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
    assert EncryptionCodec(parse_keys(NEW)).decrypt(plain) == plain


@pytest.mark.parametrize(("spec", "problem"), [
    ("nocolon", "write it as id:base64key"),
    ("a:!!!", "not valid base64"),
    ("a:" + base64.b64encode(b"short").decode(), "has 5 bytes; AES needs 16, 24 or 32"),
    (f"{NEW},{NEW}", "used twice"),
])
def test_bad_key_settings_say_what_to_fix(spec, problem):
    with pytest.raises(PayloadKeyError, match=problem):
        parse_keys(spec)


def test_no_keys_means_no_codec():
    assert parse_keys(" ") == {}
    assert data_converter("").payload_codec is None


def test_the_cli_makes_a_usable_key_and_names_a_bad_id():
    from typer.testing import CliRunner

    from dunflow.cli import app as cli

    made = CliRunner().invoke(cli, ["keys", "new", "--id", "2026-11"])
    assert made.exit_code == 0
    assert len(parse_keys(made.stdout.strip())["2026-11"]) == 32
    bad = CliRunner().invoke(cli, ["keys", "new", "--id", "no spaces"])
    assert bad.exit_code == 2 and "write it as id:base64key" in bad.output
