"""Encryption at rest for connection URLs: AES-256-GCM with a key id.

Keys come from ``WFMON_SECRET_KEY`` as a keyring, ``kid1:<base64 key>,kid2:<base64 key>``.
The FIRST key is current: everything is encrypted with it. The others only decrypt, so
rotation is: put the new key first, re-encrypt (:func:`reencrypt_connections` in
``wfmon.connections.service``), then drop the old key. A single bare base64 key (no
``kid:``) is accepted and gets the key id ``default``.

Stored form: ``nonce (12 bytes) || ciphertext || tag`` in ``connection_url_encrypted`` and
the key id in ``encryption_key_id``. The associated data binds a ciphertext to its project,
so a row's ciphertext copied into another project's row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wfmon.connections.errors import KeyringError

NONCE_BYTES = 12
DEFAULT_KEY_ID = "default"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Ciphertext:
    """What is stored: the key id and ``nonce || ciphertext || tag``."""

    key_id: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys; ``current`` encrypts, all of them decrypt."""

    keys: dict[str, bytes] = field(repr=False)
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyringError(f"current key id {self.current!r} is not in the keyring")

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """Parse ``kid1:<b64>,kid2:<b64>`` (or one bare base64 key).

        Raises :class:`KeyringError` naming the entry that is wrong (never echoing a key).
        """
        entries = [e.strip() for e in value.split(",") if e.strip()]
        if not entries:
            raise KeyringError("WFMON_SECRET_KEY is empty")
        keys: dict[str, bytes] = {}
        for i, entry in enumerate(entries):
            kid, sep, encoded = entry.partition(":")
            if not sep:
                if len(entries) > 1:
                    raise KeyringError(
                        f"WFMON_SECRET_KEY entry {i + 1} has no key id (expected kid:base64key)"
                    )
                kid, encoded = DEFAULT_KEY_ID, entry
            if not _KEY_ID.match(kid):
                raise KeyringError(
                    f"WFMON_SECRET_KEY entry {i + 1}: key id must be 1-64 of [A-Za-z0-9_.-]"
                )
            if kid in keys:
                raise KeyringError(f"WFMON_SECRET_KEY: key id {kid!r} appears twice")
            keys[kid] = _decode_key(encoded, f"WFMON_SECRET_KEY entry {i + 1} ({kid!r})")
        return cls(keys=keys, current=next(iter(keys)))

    @classmethod
    def from_settings(cls) -> Keyring:
        """The keyring in ``WFMON_SECRET_KEY`` (via :func:`wfmon.settings.load_settings`)."""
        from wfmon.settings import load_settings

        secret = load_settings().secret_key
        if secret is None:
            raise KeyringError(
                "WFMON_SECRET_KEY is not set: project connections need a key to encrypt "
                "their URLs (generate one with `python -m wfmon.connections.crypto`)"
            )
        return cls.parse(secret.get_secret_value())

    def encrypt(self, plaintext: str, *, context: str) -> Ciphertext:
        """Encrypt with the current key; ``context`` (e.g. the project id) must match on
        decryption."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.current]).encrypt(
            nonce, plaintext.encode(), _aad(self.current, context)
        )
        return Ciphertext(key_id=self.current, data=nonce + sealed)

    def decrypt(self, ciphertext: Ciphertext, *, context: str) -> str:
        """Decrypt; raises :class:`KeyringError` if the key is unknown or the data (or its
        context) was tampered with."""
        key = self.keys.get(ciphertext.key_id)
        if key is None:
            raise KeyringError(
                f"a connection is encrypted with key id {ciphertext.key_id!r}, which is not "
                "in WFMON_SECRET_KEY (was it removed before re-encrypting?)"
            )
        data = bytes(ciphertext.data)
        try:
            plain = AESGCM(key).decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], _aad(ciphertext.key_id, context)
            )
        except (InvalidTag, ValueError):
            raise KeyringError(
                "a connection URL failed to decrypt (wrong key, or tampered)"
            ) from None
        return plain.decode()


def _aad(key_id: str, context: str) -> bytes:
    return f"wfmon-connection-url\x00{key_id}\x00{context}".encode()


def _decode_key(encoded: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{where} is not valid base64") from None
    if len(raw) != 32:
        raise KeyringError(f"{where} must decode to 32 bytes (AES-256), got {len(raw)}")
    return raw


def generate_key(key_id: str = "k1") -> str:
    """A fresh ``kid:base64key`` entry for ``WFMON_SECRET_KEY``."""
    return f"{key_id}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


if __name__ == "__main__":
    print(generate_key())
