"""The zero-config default: PostgreSQL, Temporal and Redis run locally from Python wheels.

``EmbeddedServices(state_dir).up()`` is idempotent: a service whose recorded PID is alive
and healthy is left alone, a dead one is restarted (on its recorded port when that port is
free, so URLs stay stable). Ports and PIDs are recorded in ``<state_dir>/services.json``;
``down()`` stops each process by its PID. Data (the Postgres cluster, Temporal's SQLite
file, Redis's append-only file) stays in the state directory across ``down`` + ``up``.
"""

from __future__ import annotations

import fcntl
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from wfmon.dev import postgres, redis, temporal
from wfmon.dev.process import ServiceError, free_port, pid_alive, port_is_free
from wfmon.dev.unprivileged import cluster_root

STATE_FILE = "services.json"


class Service(StrEnum):
    POSTGRES = "postgres"
    TEMPORAL = "temporal"
    REDIS = "redis"


@dataclass
class ServiceRecord:
    """What ``services.json`` remembers of one service."""

    pid: int | None = None
    port: int | None = None
    extra_ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoints:
    """Where the embedded services answer. URLs carry credentials: never print them raw."""

    database_url: str  # the authenticator: wfmon's processes (may become wfmon_user, wfmon_system)
    web_database_url: str  # the web app's login (may become wfmon_user only)
    migrations_url: str  # the owner: `wfmon migrate` only
    recorder_database_url: str  # Temporal workers' attempt recording (insert attempt rows only)
    dagster_database_url: str
    temporal_address: str
    temporal_ui_url: str | None
    redis_url: str


@dataclass(frozen=True)
class ServiceStatus:
    service: Service
    running: bool
    healthy: bool
    pid: int | None
    port: int | None


class EmbeddedServices:
    """Start, check and stop the embedded services whose state lives in ``state_dir``."""

    def __init__(self, state_dir: Path, *, temporal_ui: bool = True, durable: bool = True) -> None:
        self.state_dir = state_dir.resolve()
        self.temporal_ui = temporal_ui
        self.durable = durable

    # -- state -----------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    def _read(self) -> dict[Service, ServiceRecord]:
        records = {s: ServiceRecord() for s in Service}
        if self._state_path.exists():
            raw = json.loads(self._state_path.read_text())
            for s in Service:
                if s.value in raw:
                    records[s] = ServiceRecord(**raw[s.value])
        return records

    def _write(self, records: dict[Service, ServiceRecord]) -> None:
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({s.value: asdict(r) for s, r in records.items()}, indent=2))
        tmp.replace(self._state_path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise up/down across processes sharing this state directory."""
        self._check_state_dir()
        with open(self.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _check_state_dir(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.state_dir):
                pass
        except OSError as exc:
            raise ServiceError(
                f"state directory {self.state_dir} is not usable: {exc.strerror or exc}. "
                "Set WFMON_STATE_DIR to a writable directory."
            ) from None

    # -- lifecycle -------------------------------------------------------------------

    def up(self) -> Endpoints:
        """Start every service that is not running and healthy; return the endpoints."""
        with self._locked():
            records = self._read()
            try:
                for service in Service:
                    if not self._healthy(service, records[service]):
                        self._start(service, records[service])
                    self._write(records)
            finally:
                self._write(records)
            return self._endpoints(records)

    def down(self) -> None:
        """Stop every service by the PID recorded for it. Ports are kept for the next up."""
        with self._locked():
            records = self._read()
            for service in reversed(Service):
                rec = records[service]
                _STOP[service](rec.pid)
                rec.pid = None
                self._write(records)

    def status(self) -> list[ServiceStatus]:
        records = (
            self._read() if self._state_path.exists() else {s: ServiceRecord() for s in Service}
        )
        return [
            ServiceStatus(
                service=s,
                running=pid_alive(records[s].pid),
                healthy=pid_alive(records[s].pid) and self._healthy(s, records[s]),
                pid=records[s].pid if pid_alive(records[s].pid) else None,
                port=records[s].port,
            )
            for s in Service
        ]

    def endpoints(self) -> Endpoints:
        """Endpoints recorded by the last ``up`` (raises if services were never started)."""
        records = self._read()
        if any(records[s].port is None for s in Service):
            raise ServiceError(
                f"embedded services have not been started in {self.state_dir}: "
                "run `wfmon services up` or set the WFMON_* service URLs"
            )
        return self._endpoints(records)

    # -- per service -----------------------------------------------------------------

    def _root(self, service: Service) -> Path:
        if service is Service.POSTGRES:
            # As root, the cluster may have to live where user 'nobody' can reach it.
            return cluster_root(self.state_dir)
        return self.state_dir / service.value

    def _healthy(self, service: Service, rec: ServiceRecord) -> bool:
        if not pid_alive(rec.pid) or rec.port is None:
            return False
        if service is Service.POSTGRES:
            return postgres.is_healthy(postgres.PostgresInstance(self._root(service), rec.port))
        if service is Service.TEMPORAL:
            return temporal.is_healthy(rec.port)
        return redis.is_healthy(rec.port)

    def _start(self, service: Service, rec: ServiceRecord) -> None:
        if pid_alive(rec.pid):
            # Alive but unhealthy: stop it before starting a fresh one.
            _STOP[service](rec.pid)
        # A port found free can be taken by another process before the service binds it
        # (seen in CI: Temporal's HTTP port). Then the start is tried on fresh ports.
        for attempt in range(_PORT_ATTEMPTS):
            try:
                self._start_once(service, rec)
                return
            except ServiceError as exc:
                if attempt == _PORT_ATTEMPTS - 1 or "already in use" not in str(exc).lower():
                    raise
                rec.port, rec.extra_ports = free_port(), {}

    def _start_once(self, service: Service, rec: ServiceRecord) -> None:
        rec.port = reuse_or_pick_port(rec.port)
        root = self._root(service)
        if service is Service.POSTGRES:
            rec.pid = postgres.start(root, rec.port, durable=self.durable)
        elif service is Service.TEMPORAL:
            names = ("http", "metrics", "ui") if self.temporal_ui else ("http", "metrics")
            rec.extra_ports = {n: reuse_or_pick_port(rec.extra_ports.get(n)) for n in names}
            rec.pid = temporal.start(
                root,
                temporal.TemporalPorts(
                    grpc=rec.port,
                    ui=rec.extra_ports.get("ui"),
                    http=rec.extra_ports["http"],
                    metrics=rec.extra_ports["metrics"],
                ),
            )
        else:
            rec.pid = redis.start(root, rec.port)

    def _endpoints(self, records: dict[Service, ServiceRecord]) -> Endpoints:
        pg = postgres.PostgresInstance(
            self._root(Service.POSTGRES), _port(records, Service.POSTGRES)
        )
        ui = records[Service.TEMPORAL].extra_ports.get("ui")
        return Endpoints(
            database_url=pg.app_url(),
            web_database_url=pg.web_url(),
            migrations_url=pg.owner_url(),
            recorder_database_url=pg.recorder_url(),
            dagster_database_url=pg.dagster_url(),
            temporal_address=f"127.0.0.1:{_port(records, Service.TEMPORAL)}",
            temporal_ui_url=f"http://127.0.0.1:{ui}" if ui else None,
            redis_url=f"redis://127.0.0.1:{_port(records, Service.REDIS)}/0",
        )


_STOP = {
    Service.POSTGRES: postgres.stop,
    Service.TEMPORAL: temporal.stop,
    Service.REDIS: redis.stop,
}


#: Starts of one service tried when its port was taken between the check and the bind.
_PORT_ATTEMPTS = 3


def _port(records: dict[Service, ServiceRecord], service: Service) -> int:
    port = records[service].port
    if port is None:
        raise ServiceError(f"{service.value} has no recorded port")
    return port


def reuse_or_pick_port(port: int | None) -> int:
    """``port`` when it is free again, else a new free port (so URLs stay stable if possible)."""
    if port is not None and port_is_free(port):
        return port
    return free_port()
