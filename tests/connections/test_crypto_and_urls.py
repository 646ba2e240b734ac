"""Encryption at rest, keyring parsing and rotation, URL validation and masking (no I/O)."""

from __future__ import annotations

import base64
import os

import pytest

from wfmon.connections import Ciphertext, InvalidConnection, Keyring, KeyringError, generate_key
from wfmon.connections.policy import AddressClass, NetworkPolicy, classify
from wfmon.connections.urls import ConnectionType, mask_url, validate_options, validate_url

PG = ConnectionType.POSTGRESQL
REDIS = ConnectionType.REDIS
SECRET = "s3cr3t-P4ss"


def test_roundtrip_is_bound_to_context_and_key() -> None:
    ring = Keyring.parse(generate_key("k1"))
    sealed = ring.encrypt(f"postgresql://u:{SECRET}@db.example.com/app", context="project-1")
    assert sealed.key_id == "k1"
    assert SECRET.encode() not in sealed.data
    assert ring.decrypt(sealed, context="project-1").endswith("/app")
    # A ciphertext moved to another project's row does not decrypt.
    with pytest.raises(KeyringError, match="failed to decrypt"):
        ring.decrypt(sealed, context="project-2")
    tampered = Ciphertext(sealed.key_id, sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(KeyringError, match="failed to decrypt"):
        ring.decrypt(tampered, context="project-1")
    # Two encryptions of the same URL differ (random nonce).
    assert ring.encrypt("x", context="c").data != ring.encrypt("x", context="c").data


def test_rotation_first_key_is_current_old_keys_still_decrypt() -> None:
    old = generate_key("old")
    new = generate_key("new")
    sealed_old = Keyring.parse(old).encrypt("redis://h/0", context="p")
    rotated = Keyring.parse(f"{new},{old}")
    assert rotated.current == "new"
    assert rotated.decrypt(sealed_old, context="p") == "redis://h/0"
    assert rotated.encrypt("redis://h/0", context="p").key_id == "new"
    with pytest.raises(KeyringError, match=r"key id 'old'.*not in WFMON_SECRET_KEY"):
        Keyring.parse(new).decrypt(sealed_old, context="p")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("k1:notbase64!!", "not valid base64|32 bytes"),
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "must decode to 32 bytes"),
        (f"{generate_key('a')},{generate_key('a')}", "appears twice"),
        (f"{generate_key('a')},{base64.b64encode(os.urandom(32)).decode()}", "no key id"),
        (f"bad id:{base64.b64encode(os.urandom(32)).decode()}", "key id must be"),
    ],
)
def test_keyring_errors_name_the_entry(value: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as info:
        Keyring.parse(value)
    key_material = value.rpartition(":")[2]
    assert not key_material or key_material[:12] not in str(info.value)


def test_bare_key_gets_default_id() -> None:
    ring = Keyring.parse(base64.b64encode(os.urandom(32)).decode())
    assert ring.current == "default"


@pytest.mark.parametrize(
    ("ctype", "url", "message"),
    [
        (PG, "", "url is empty"),
        (PG, f"mysql://u:{SECRET}@h/db", "must start with postgresql:// or postgres://"),
        (PG, f"postgresql://u:{SECRET}@h:99999/db", "port must be a number"),
        (PG, f"postgresql://u:{SECRET}@h:abc/db", "port must be a number"),
        (PG, f"postgresql://u:{SECRET}@/db", "must name a host"),
        (PG, f"postgresql://u:{SECRET}@h:5432", "must name a database"),
        (PG, f"postgresql://u:{SECRET}@h/db?host=10.0.0.1", "'host' is not allowed"),
        (PG, f"postgresql://u:{SECRET}@h/db?sslrootcert=/etc/x", "'sslrootcert' is not allowed"),
        (PG, f"postgresql://u:{SECRET}@h1,h2/db", "exactly one host"),
        (PG, f"postgresql://u:{SECRET}@[::1/db", "does not parse"),
        (PG, f"postgresql://u:{SECRET}@h/db x", "whitespace"),
        (REDIS, f"http://u:{SECRET}@h/0", "must start with redis:// or rediss://"),
        (REDIS, f"redis://u:{SECRET}@h/abc", "redis database must be a number"),
        (REDIS, f"redis://u:{SECRET}@h/0?decode_responses=1", "not allowed"),
    ],
)
def test_bad_urls_name_the_problem_not_the_url(
    ctype: ConnectionType, url: str, message: str
) -> None:
    with pytest.raises(InvalidConnection, match=message) as info:
        validate_url(ctype, url)
    assert SECRET not in str(info.value)


def test_good_urls_and_masks() -> None:
    url = f"postgresql://app:{SECRET}@db.example.com:6543/orders?sslmode=require"
    assert validate_url(PG, url) == url
    assert mask_url(PG, url) == "postgresql://db.example.com:6543/orders"
    assert mask_url(REDIS, f"rediss://:{SECRET}@cache.example.com") == (
        "rediss://cache.example.com:6379/0"
    )
    assert mask_url(PG, "postgres://u:p@[2001:db8::1]/x") == "postgres://[2001:db8::1]:5432/x"


def test_options_validated_with_defaults() -> None:
    assert validate_options(PG, None)["statement_timeout_ms"] == 30_000
    with pytest.raises(InvalidConnection, match=r"config.pool_max_size"):
        validate_options(PG, {"pool_max_size": 0})
    with pytest.raises(InvalidConnection, match=r"config.bogus: Extra inputs"):
        validate_options(REDIS, {"bogus": 1})
    with pytest.raises(InvalidConnection, match="JSON object"):
        validate_options(REDIS, [1])


@pytest.mark.parametrize(
    ("address", "cls"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("10.1.2.3", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),
        ("fd00::1", AddressClass.PRIVATE),
        ("169.254.169.254", AddressClass.FORBIDDEN),
        ("0.0.0.0", AddressClass.FORBIDDEN),
        ("224.0.0.1", AddressClass.FORBIDDEN),
        ("8.8.8.8", AddressClass.PUBLIC),
    ],
)
def test_address_classes(address: str, cls: AddressClass) -> None:
    import ipaddress

    assert classify(ipaddress.ip_address(address)) is cls


def test_policy_defaults_deny_loopback_and_private(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    monkeypatch.delenv("WFMON_CONNECTIONS_ALLOW_LOOPBACK", raising=False)
    monkeypatch.delenv("WFMON_CONNECTIONS_ALLOW_PRIVATE", raising=False)
    policy = NetworkPolicy.from_env()
    assert not policy.allows(ipaddress.ip_address("127.0.0.1"))
    assert not policy.allows(ipaddress.ip_address("10.0.0.1"))
    assert policy.allows(ipaddress.ip_address("8.8.8.8"))
    monkeypatch.setenv("WFMON_CONNECTIONS_ALLOW_LOOPBACK", "true")
    assert NetworkPolicy.from_env() == NetworkPolicy(allow_loopback=True)
    # Link-local (cloud metadata) stays denied even when everything else is allowed.
    assert not NetworkPolicy.permissive_local().allows(ipaddress.ip_address("169.254.169.254"))
