"""wfmon configuration: one typed settings object read from ``WFMON_*`` variables.

Every service URL is optional. When a URL is unset, wfmon uses the matching embedded
service started by ``wfmon services up`` (state under ``WFMON_STATE_DIR``, default
``.wfmon``). A value that does not parse raises :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from wfmon.dev.services import Endpoints

ENV_PREFIX = "WFMON_"


class SettingsError(ValueError):
    """A ``WFMON_*`` variable holds a value wfmon cannot use; the message names it."""


def _check_url(value: str | None, schemes: tuple[str, ...], what: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"is not a valid {what} URL ({exc})") from None
    if parts.scheme not in schemes:
        raise ValueError(
            f"must be a {what} URL starting with {' or '.join(s + '://' for s in schemes)}"
        )
    if not parts.hostname:
        raise ValueError(f"must name a host ({what} URL)")
    return value


class Settings(BaseSettings):
    """Effective configuration. Secrets are :class:`SecretStr` so they never print."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL of wfmon's processes: a login role that owns nothing.",
    )
    web_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL of the web app (a role that may only become wfmon_user).",
    )
    migrations_database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL of the tables' owner, for `wfmon migrate`."
    )
    dagster_database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL of Dagster's storage database."
    )
    temporal_address: str | None = Field(default=None, description="host:port of Temporal.")
    temporal_namespace: str = Field(default="default", min_length=1)
    temporal_tls: bool = Field(default=False, description="Use TLS to reach Temporal.")
    temporal_tls_cert: Path | None = Field(default=None, description="Client certificate (mTLS).")
    temporal_tls_key: Path | None = Field(default=None, description="Client private key (mTLS).")
    temporal_api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key.")
    redis_url: SecretStr | None = Field(default=None, description="Redis URL for wfmon itself.")
    secret_key: SecretStr | None = Field(
        default=None, description="Key(s) that encrypt project connection URLs at rest."
    )
    jwt_secret: SecretStr | None = Field(default=None, description="HMAC secret for API tokens.")
    state_dir: Path = Field(default=Path(".wfmon"), description="Embedded services' state.")

    @field_validator(
        "database_url", "web_database_url", "migrations_database_url", "dagster_database_url"
    )
    @classmethod
    def _database_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            _check_url(v.get_secret_value(), ("postgresql", "postgres"), "PostgreSQL")
        return v if v and v.get_secret_value() else None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            _check_url(v.get_secret_value(), ("redis", "rediss", "unix"), "Redis")
        return v if v and v.get_secret_value() else None

    @field_validator("temporal_address")
    @classmethod
    def _temporal_address(cls, v: str | None) -> str | None:
        if not v:
            return None
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. localhost:7233")
        return v

    @cached_property
    def state_path(self) -> Path:
        return self.state_dir.resolve()


def load_settings() -> Settings:
    """Read settings from the process environment.

    Raises :class:`SettingsError` whose message names every bad variable.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{ENV_PREFIX}{field.upper()} {msg}")
        raise SettingsError("; ".join(problems)) from None


def resolve_endpoints(settings: Settings) -> ResolvedEndpoints:
    """The URLs wfmon uses: each ``WFMON_*`` value, or the embedded service's when unset.

    The embedded services' state is read only for a URL that is actually asked for and
    unset, so ``WFMON_DATABASE_URL`` alone is enough for ``wfmon migrate``.
    """
    return ResolvedEndpoints(settings)


def masked_service_url(url: str) -> str:
    """A service URL with its password replaced by ``***`` (safe to print or log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class ResolvedEndpoints:
    """Effective service URLs. They may carry credentials: never log them raw."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _embedded(self) -> Endpoints:
        from wfmon.dev.services import EmbeddedServices

        return EmbeddedServices(self._settings.state_path).endpoints()

    @property
    def database_url(self) -> str:
        url = self._settings.database_url
        return url.get_secret_value() if url else self._embedded.database_url

    @property
    def web_database_url(self) -> str:
        """The web app's login: ``WFMON_WEB_DATABASE_URL``, else ``WFMON_DATABASE_URL``'s."""
        url = self._settings.web_database_url
        if url:
            return url.get_secret_value()
        if self._settings.database_url:
            return self.database_url
        return self._embedded.web_database_url

    @property
    def migrations_url(self) -> str:
        """The tables' owner, for ``wfmon migrate`` only."""
        return (
            self._own_or_embedded("migrations_database_url", "the table owner that runs migrations")
            or self._embedded.migrations_url
        )

    @property
    def dagster_database_url(self) -> str:
        """Dagster's storage database (its own tables; not wfmon's)."""
        return (
            self._own_or_embedded("dagster_database_url", "Dagster's storage database")
            or self._embedded.dagster_database_url
        )

    def _own_or_embedded(self, field: str, what: str) -> str | None:
        url: SecretStr | None = getattr(self._settings, field)
        if url:
            return url.get_secret_value()
        if self._settings.database_url:
            # wfmon's own login role cannot do this job: say which variable is missing.
            raise SettingsError(
                f"{ENV_PREFIX}{field.upper()} is unset: with WFMON_DATABASE_URL set, wfmon "
                f"needs the URL of {what} too"
            )
        return None

    @property
    def temporal_address(self) -> str:
        return self._settings.temporal_address or self._embedded.temporal_address

    @property
    def redis_url(self) -> str:
        url = self._settings.redis_url
        return url.get_secret_value() if url else self._embedded.redis_url
