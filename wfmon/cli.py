"""``wfmon`` command line: services, migrations, worker, runs, sync.

Each subcommand is a small function ``cmd_<name>(args) -> int`` registered in
:func:`build_parser`. Errors the user can fix are printed as one line, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from wfmon.dev.process import ServiceError
from wfmon.settings import Settings, SettingsError, load_settings

Command = Callable[[argparse.Namespace, Settings], int]


def mask_url(url: str) -> str:
    """A URL with its password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# -- services ---------------------------------------------------------------------------


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.dev.services import EmbeddedServices

    services = EmbeddedServices(settings.state_path, temporal_ui=not args.headless)
    if args.action == "up":
        ep = services.up()
        print(f"state directory   {settings.state_path}")
        print(f"PostgreSQL        {mask_url(ep.database_url)}")
        print(f"Dagster storage   {mask_url(ep.dagster_database_url)}")
        print(f"Temporal          {ep.temporal_address}")
        if ep.temporal_ui_url:
            print(f"Temporal Web UI   {ep.temporal_ui_url}")
        print(f"Redis             {ep.redis_url}")
    elif args.action == "down":
        services.down()
        print("embedded services stopped")
    else:
        unhealthy = 0
        for st in services.status():
            state = "healthy" if st.healthy else ("running, unhealthy" if st.running else "stopped")
            unhealthy += not st.healthy
            print(
                f"{st.service.value:<10} {state:<20} pid={st.pid or '-':<8} port={st.port or '-'}"
            )
        return 1 if unhealthy else 0
    return 0


# -- migrations -------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.migrate import apply_migrations
    from wfmon.settings import resolve_endpoints

    applied = apply_migrations(resolve_endpoints(settings).database_url)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.dev.demo import DemoOptions, run_demo

    return run_demo(settings, DemoOptions(exit_after=args.exit_after))


# -- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wfmon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("services", help="start, stop or check the embedded services")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--headless", action="store_true", help="no Temporal Web UI")
    p.set_defaults(func=cmd_services)

    p = sub.add_parser("migrate", help="apply database migrations (safe to run twice)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("demo", help="bring the whole platform up on embedded services")
    p.add_argument("--exit-after", type=float, default=None, help="stop after N seconds")
    p.set_defaults(func=cmd_demo)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        func: Command = args.func
        return func(args, settings)
    except (SettingsError, ServiceError) as exc:
        print(f"wfmon: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
