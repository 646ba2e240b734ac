"""Create, list, read, change, delete and test alert rules.

Every function runs in the CALLER's unit of work (``Database.as_user``), so row-level
security decides what exists: another user's rule (or project) is simply not found.
Guarantees:

- a rule's kind, parameters and channel are validated before anything is written, and a
  bad one raises :class:`InvalidRule` naming the problem;
- the channel's secret part (webhook URL and signing secret, Slack URL, SMTP password) is
  encrypted with the keyring of project connections, bound to the rule's id; what is
  returned (:class:`RuleInfo`) carries only ``channel_masked`` and the non-secret config;
- names are unique per project (:class:`RuleConflict`, decided by the unique constraint).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg.errors

from wfmon.alerts.channels import ChannelTarget, check_http_url, mask_http_url
from wfmon.alerts.errors import InvalidRule, RuleConflict, RuleNotFound
from wfmon.alerts.model import (
    AlertKind,
    ChannelType,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    parse_kind,
    parse_params,
)
from wfmon.connections.crypto import Ciphertext, Keyring
from wfmon.connections.errors import HostNotAllowed
from wfmon.connections.policy import NetworkPolicy
from wfmon.db import DbConnection
from wfmon.db import alerts as stored

MAX_QUIET_PERIOD_SECONDS = 7 * 86400


@dataclass(frozen=True)
class RuleInfo:
    """A rule as its owner sees it: the channel only masked."""

    id: UUID
    project_id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    name: str
    kind: AlertKind
    params: dict[str, Any]
    channel_type: ChannelType
    channel_config: dict[str, Any]
    channel_masked: str
    quiet_period_seconds: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


def _info(row: dict[str, Any]) -> RuleInfo:
    return RuleInfo(
        id=row["id"],
        project_id=row["project_id"],
        workflow_id=row["workflow_id"],
        workflow_name=row["workflow_name"],
        name=row["name"],
        kind=AlertKind(row["kind"]),
        params=dict(row["params"] or {}),
        channel_type=ChannelType(row["channel_type"]),
        channel_config=dict(row["channel_config"] or {}),
        channel_masked=row["channel_masked"],
        quiet_period_seconds=row["quiet_period_seconds"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _context(rule_id: UUID) -> str:
    return f"alert-channel:{rule_id}"


def _as_uuid(value: UUID | str, what: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise RuleNotFound(f"{what} {value!r} is not a valid id") from None


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRule("name is empty")
    if len(name.strip()) > 200:
        raise InvalidRule("name is longer than 200 characters")
    return name.strip()


def _quiet(seconds: int) -> int:
    if not 0 <= seconds <= MAX_QUIET_PERIOD_SECONDS:
        raise InvalidRule(f"quiet_period_seconds must be 0 to {MAX_QUIET_PERIOD_SECONDS}")
    return seconds


def channel_columns(
    channel: WebhookChannel | SlackChannel | EmailChannel,
    rule_id: UUID,
    keyring: Keyring,
    policy: NetworkPolicy | None,
) -> dict[str, Any]:
    """Validate a channel and split it into stored columns: non-secret config, masked form
    and the encrypted secret part."""
    if isinstance(channel, WebhookChannel):
        check_http_url(channel.url, policy)
        secret = {"url": channel.url.strip(), "signing_secret": channel.signing_secret}
        config: dict[str, Any] = {}
        masked = f"{mask_http_url(channel.url)} (signing secret configured)"
    elif isinstance(channel, SlackChannel):
        check_http_url(channel.url, policy)
        secret = {"url": channel.url.strip()}
        config = {}
        masked = mask_http_url(channel.url)
    else:
        for address in [channel.sender, *channel.recipients]:
            if "@" not in address or any(c in address for c in "\r\n,;<> "):
                raise InvalidRule(f"channel: {address!r} is not an e-mail address")
        if policy is not None:
            try:
                policy.check_literal(channel.host)
            except HostNotAllowed as exc:
                raise InvalidRule(
                    f"channel.host: {exc}".replace("connection's", "channel's")
                ) from None
        secret = {"password": channel.password or ""}
        config = {
            "host": channel.host,
            "port": channel.port,
            "security": channel.security,
            "username": channel.username,
            "sender": channel.sender,
            "recipients": channel.recipients,
        }
        login = f"{channel.username}@" if channel.username else ""
        masked = f"smtp://{login}{channel.host}:{channel.port} → {', '.join(channel.recipients)}"
        if channel.password:
            masked += " (password configured)"
    sealed = keyring.encrypt(json.dumps(secret), context=_context(rule_id))
    return {
        "channel_type": channel.type,
        "channel_config": config,
        "channel_masked": masked,
        "channel_secret_encrypted": sealed.data,
        "encryption_key_id": sealed.key_id,
    }


def _workflow(value: UUID | str | None) -> UUID | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise InvalidRule(f"workflow_id {value!r} is not a valid id") from None


def create_rule(
    conn: DbConnection,
    *,
    project_id: UUID | str,
    name: str,
    kind: str,
    params: dict[str, Any] | None,
    channel: WebhookChannel | SlackChannel | EmailChannel,
    keyring: Keyring,
    workflow_id: UUID | str | None = None,
    quiet_period_seconds: int = 0,
    enabled: bool = True,
    policy: NetworkPolicy | None = None,
) -> RuleInfo:
    """Validate, encrypt and store a new rule in ``project_id`` (owned by the caller)."""
    project = _as_uuid(project_id, "project")
    rule_kind = parse_kind(kind)
    rule_id = uuid.uuid4()
    values = {
        "workflow_id": _workflow(workflow_id),
        "name": _name(name),
        "kind": rule_kind.value,
        "params": parse_params(rule_kind, params),
        "quiet_period_seconds": _quiet(quiet_period_seconds),
        "enabled": enabled,
        **channel_columns(channel, rule_id, keyring, policy),
    }
    try:
        with conn.transaction():
            row = stored.insert_rule(conn, rule_id, project, values)
    except psycopg.errors.UniqueViolation:
        raise RuleConflict(f"a rule named {values['name']!r} already exists") from None
    except (
        psycopg.errors.InsufficientPrivilege,
        psycopg.errors.ForeignKeyViolation,
        psycopg.errors.NotNullViolation,
    ):
        # RLS WITH CHECK refused (not the caller's project, or a workflow of another
        # project), or no such project / workflow: the same answer for all.
        if values["workflow_id"] is not None:
            raise RuleNotFound(
                f"project {project} or workflow {values['workflow_id']} not found"
            ) from None
        raise RuleNotFound(f"project {project} not found") from None
    return _info(row)


def list_rules(conn: DbConnection, project_id: UUID | str) -> list[RuleInfo]:
    return [_info(r) for r in stored.list_rules(conn, _as_uuid(project_id, "project"))]


def get_rule(conn: DbConnection, rule_id: UUID | str) -> RuleInfo:
    rid = _as_uuid(rule_id, "rule")
    row = stored.get_rule(conn, rid)
    if row is None:
        raise RuleNotFound(f"alert rule {rid} not found")
    return _info(row)


def update_rule(
    conn: DbConnection,
    rule_id: UUID | str,
    *,
    keyring: Keyring,
    changes: dict[str, Any],
    channel: WebhookChannel | SlackChannel | EmailChannel | None = None,
    policy: NetworkPolicy | None = None,
) -> RuleInfo:
    """Change the given fields (``name``, ``workflow_id``, ``kind``, ``params``,
    ``quiet_period_seconds``, ``enabled``) and/or replace the channel (its secret must be
    given again). Changing ``kind`` re-validates ``params`` (default: the current ones)."""
    current = get_rule(conn, rule_id)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = _name(changes["name"])
    if "workflow_id" in changes:
        values["workflow_id"] = _workflow(changes["workflow_id"])
    if "kind" in changes or "params" in changes:
        kind = parse_kind(changes["kind"]) if "kind" in changes else current.kind
        values["kind"] = kind.value
        values["params"] = parse_params(kind, changes.get("params", current.params))
    if "quiet_period_seconds" in changes:
        values["quiet_period_seconds"] = _quiet(int(changes["quiet_period_seconds"]))
    if "enabled" in changes:
        values["enabled"] = bool(changes["enabled"])
    if channel is not None:
        values |= channel_columns(channel, current.id, keyring, policy)
    if not values:
        return current
    try:
        with conn.transaction():
            row = stored.update_rule(conn, current.id, values)
    except psycopg.errors.UniqueViolation:
        raise RuleConflict(f"a rule named {values.get('name')!r} already exists") from None
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ForeignKeyViolation):
        raise RuleNotFound(f"workflow {values.get('workflow_id')} not found") from None
    if row is None:
        raise RuleNotFound(f"alert rule {current.id} not found")
    return _info(row)


def delete_rule(conn: DbConnection, rule_id: UUID | str) -> None:
    rid = _as_uuid(rule_id, "rule")
    if not stored.delete_rule(conn, rid):
        raise RuleNotFound(f"alert rule {rid} not found")


def decrypt_target(row: dict[str, Any], keyring: Keyring) -> ChannelTarget:
    """The channel of a rule row (with ``channel_secret_encrypted``), decrypted. For
    sending only: never return it to a user, never log it."""
    plain = keyring.decrypt(
        Ciphertext(row["encryption_key_id"], bytes(row["channel_secret_encrypted"])),
        context=_context(row["rule_id"] if "rule_id" in row else row["id"]),
    )
    return ChannelTarget(
        type=ChannelType(row["channel_type"]),
        config=dict(row["channel_config"] or {}),
        secret={k: str(v) for k, v in json.loads(plain).items()},
    )


def load_rule_secret(
    conn: DbConnection, rule_id: UUID | str, keyring: Keyring
) -> tuple[dict[str, Any], ChannelTarget]:
    """The rule row (with its project's name) and its decrypted channel, as visible in
    ``conn``'s unit of work; :class:`RuleNotFound` otherwise."""
    rid = _as_uuid(rule_id, "rule")
    row = stored.get_rule_secret(conn, rid)
    if row is None:
        raise RuleNotFound(f"alert rule {rid} not found")
    return row, decrypt_target(row, keyring)
