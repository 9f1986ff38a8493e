"""Payload encryption: every workflow input, signal, result and query answer leaves the process
AES-GCM encrypted, so Temporal's database and UI hold no debtor data in clear.

Keys come from `DUNFLOW_PAYLOAD_KEYS` as "id:base64key,id:base64key"; the first encrypts, all of
them decrypt, so a key is rotated by putting a new one in front and keeping the old ones.
Search attributes are not payloads of this codec: they stay plain and hold no personal data.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class PayloadKeyError(ValueError):
    """A key setting that cannot be used; the message says how to fix it."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """"id:base64key,..." into {id: key}, in order (the first encrypts)."""
    keys: dict[str, bytes] = {}
    for position, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        key_id, sep, encoded = item.partition(":")
        where = f"DUNFLOW_PAYLOAD_KEYS item {position + 1}"
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise PayloadKeyError(f"{where}: write it as id:base64key, the id of letters, digits, . _ or -")
        if key_id in keys:
            raise PayloadKeyError(f"{where}: the key id {key_id!r} is used twice; give every key its own id")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise PayloadKeyError(f"{where} ({key_id}): the key is not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise PayloadKeyError(f"{where} ({key_id}): the key has {len(key)} bytes; AES needs 16, 24 or 32 "
                                  "(make one with `dunflow keys new`)")
        keys[key_id] = key
    return keys


def new_key_spec(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: dict[str, bytes]):
        if not keys:
            raise PayloadKeyError("no payload key given")
        self.key_id = next(iter(keys))
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(nonce, payload.SerializeToString(), self.key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(f"payload encrypted with key {key_id!r}, which is not in DUNFLOW_PAYLOAD_KEYS; "
                                  "keep old keys listed after the new one")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadKeyError(f"payload with key id {key_id!r} does not decrypt: the key under that id "
                                  "changed or the payload was altered") from None
        return Payload.FromString(plain)


def codec_for(spec: str) -> EncryptionCodec | None:
    keys = parse_keys(spec)
    return EncryptionCodec(keys) if keys else None


def data_converter(spec: str) -> DataConverter:
    """dunflow's converter: pydantic payloads, encrypted when keys are given."""
    codec = codec_for(spec)
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec) if codec else pydantic_data_converter
