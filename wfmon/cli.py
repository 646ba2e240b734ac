"""``wfmon`` command line: services, migrations, worker, runs, sync.

Each subcommand is a small function ``cmd_<name>(args) -> int`` registered in
:func:`build_parser`. Errors the user can fix are printed as one line, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from wfmon.db.login import UnsafeLoginRole
from wfmon.dev.process import ServiceError
from wfmon.migrate import MigrationError
from wfmon.settings import Settings, SettingsError, load_settings, masked_service_url

Command = Callable[[argparse.Namespace, Settings], int]


# -- services ---------------------------------------------------------------------------


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.dev.services import EmbeddedServices

    services = EmbeddedServices(settings.state_path, temporal_ui=not args.headless)
    if args.action == "up":
        ep = services.up()
        print(f"state directory   {settings.state_path}")
        print(f"PostgreSQL        {masked_service_url(ep.database_url)}")
        print(f"Dagster storage   {masked_service_url(ep.dagster_database_url)}")
        print(f"attempt recorder  {masked_service_url(ep.recorder_database_url)}")
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

    applied = apply_migrations(resolve_endpoints(settings).migrations_url)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.dev.demo import DemoOptions, run_demo

    return run_demo(settings, DemoOptions(exit_after=args.exit_after))


# -- worker and runs -------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from temporalio.worker import Worker

    from wfmon.runtime.attempts import AttemptRecorder, AttemptSink, InMemoryAttemptSink
    from wfmon.runtime.components import builtin_registry
    from wfmon.runtime.worker import (
        add_connection_components,
        build_worker,
        run_worker_until_signalled,
    )
    from wfmon.settings import resolve_endpoints
    from wfmon.temporal_client import connect

    registry = builtin_registry()
    sink: AttemptSink
    try:
        database_url: str | None = resolve_endpoints(settings).database_url
    except ServiceError as exc:
        database_url = None
        print(f"wfmon: no database ({exc})", file=sys.stderr)
    if database_url is not None:
        from wfmon.db import Database
        from wfmon.runtime.postgres_sink import PostgresAttemptSink

        sink, where = PostgresAttemptSink(Database(database_url)), "PostgreSQL"
    else:
        # The worker still runs; attempts stay in memory (bounded) and are not stored.
        sink, where = InMemoryAttemptSink(), "memory (not stored)"
    extra = add_connection_components(registry, database_url)
    if extra.disabled_reason:
        print(f"wfmon: connection components disabled: {extra.disabled_reason}", file=sys.stderr)

    sync_db = None
    if database_url is not None and not args.no_sync:
        from wfmon.db import Database

        sync_db = Database(database_url)

    if args.sync_only and sync_db is None:
        print("wfmon: --sync-only needs a database, and none is reachable", file=sys.stderr)
        return 2

    async def run() -> None:
        client = await connect(settings)
        recorder = AttemptRecorder(sink)
        workers: list[Worker] = []
        if not args.sync_only:
            workers.append(
                build_worker(
                    client, task_queue=args.task_queue, registry=registry, recorder=recorder
                )
            )
        if sync_db is not None:
            from wfmon.sync.activities import SyncOptions
            from wfmon.sync.messages import SYNC_TASK_QUEUE
            from wfmon.sync.worker import build_sync_worker

            sync_db.open()
            options = SyncOptions(page_size=args.sync_page_size)
            workers.append(build_sync_worker(client, sync_db, options=options))
            print(f"wfmon sync worker on task queue {SYNC_TASK_QUEUE!r}", flush=True)
        if args.sync_only:
            print("wfmon worker: sync only; Ctrl-C to stop", flush=True)
        else:
            print(
                f"wfmon worker on task queue {args.task_queue!r}, attempts to {where}; "
                f"components: {', '.join(registry)}; Ctrl-C to stop",
                flush=True,
            )
        try:
            await run_worker_until_signalled(
                *workers, recorder=None if args.sync_only else recorder
            )
        finally:
            await extra.aclose()

    try:
        asyncio.run(run())
    finally:
        close = getattr(sink, "close", None)
        if close is not None:
            close()
        extra.close()
        if sync_db is not None:
            sync_db.close()
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import json
    from pathlib import Path

    from pydantic import ValidationError

    from wfmon.model import WorkflowDefinition
    from wfmon.runtime import RunContext, builtin_registry, start_builder_run
    from wfmon.temporal_client import connect

    try:
        definition = WorkflowDefinition.model_validate_json(Path(args.definition).read_text())
        workflow_input = json.loads(args.input) if args.input is not None else None
    except OSError as exc:
        print(f"wfmon: cannot read {args.definition}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(
            f"wfmon: {args.definition} is not a valid workflow definition:\n{exc}", file=sys.stderr
        )
        return 2
    except ValueError as exc:
        print(f"wfmon: --input is not valid JSON: {exc}", file=sys.stderr)
        return 2
    from wfmon.components import SPECS

    known = set(builtin_registry()) | {spec.name for spec in SPECS}
    unknown = sorted({n.component for n in definition.nodes} - known)
    if unknown:
        print(f"wfmon: unknown component(s) {', '.join(unknown)}", file=sys.stderr)
        return 2

    async def run() -> int:
        client = await connect(settings)
        context = RunContext(project_id=args.project_id, user_id=args.user_id)
        handle = await start_builder_run(
            client, definition, workflow_input, context=context, task_queue=args.task_queue
        )
        print(f"workflow id  {handle.id}")
        print(f"run id       {handle.result_run_id}")
        if not args.wait:
            return 0
        try:
            result = await handle.result()
        except Exception as exc:
            # Temporal wraps the node's error (workflow -> NodeFailed -> activity -> cause):
            # print the whole chain so the root cause is on screen.
            chain: list[str] = []
            err: BaseException | None = exc
            while err is not None:
                chain.append(str(err))
                err = getattr(err, "cause", None)
            print("failed       " + "\n  caused by  ".join(chain))
            return 1
        print("result       " + json.dumps(result.outputs, default=str))
        return 0

    return asyncio.run(run())


# -- sync -------------------------------------------------------------------------------


def _utc(text: str) -> datetime:
    """ISO-8601 time; naive times are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    from contextlib import AsyncExitStack

    from wfmon.db import Database
    from wfmon.settings import resolve_endpoints
    from wfmon.sync.batch import ProgressBar, sync_many
    from wfmon.sync.discovery import discover, record_discovered
    from wfmon.sync.messages import SYNC_TASK_QUEUE, ExecutionRef, SyncOutcome
    from wfmon.sync.worker import build_sync_worker
    from wfmon.temporal_client import connect

    if not (args.workflow_id or args.since or args.all):
        print("wfmon: say what to sync: WORKFLOW_ID, --since TIME or --all", file=sys.stderr)
        return 2

    async def run(db: Database) -> int:
        client = await connect(settings)
        if args.workflow_id:
            run_id = (
                args.run_id
                or (await client.get_workflow_handle(args.workflow_id).describe()).run_id
            )
            refs = [ExecutionRef(client.namespace, args.workflow_id, run_id)]
        else:
            found = await discover(
                client,
                closed_after=None if args.all else args.since,
                closed_until=None if args.all else args.until,
                exclude_task_queues=[SYNC_TASK_QUEUE],
            )
            if args.running and not args.all:
                found += await discover(client, running=True, exclude_task_queues=[SYNC_TASK_QUEUE])
            record_discovered(db, found)
            refs = [d.ref for d in found]
        print(f"syncing {len(refs)} execution(s) from namespace {client.namespace!r}")
        bar = ProgressBar(len(refs))
        async with AsyncExitStack() as stack:
            if not args.no_worker:
                await stack.enter_async_context(build_sync_worker(client, db))
            report = await sync_many(
                client,
                refs,
                concurrency=args.concurrency,
                on_result=lambda r: bar.advance(r.outcome is SyncOutcome.SYNCED),
            )
        print(f"synced {report.synced}, failed {len(report.failed)} in {report.seconds:.1f}s")
        for failure in report.failed[:20]:
            print(
                f"  {failure.execution.workflow_id} / {failure.execution.run_id}: {failure.error}"
            )
        return 1 if report.failed else 0

    with Database(resolve_endpoints(settings).database_url) as db:
        return asyncio.run(run(db))


# -- export -----------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    import tempfile
    from contextlib import closing
    from pathlib import Path
    from uuid import UUID

    from wfmon.api.tokens import UnknownUser, find_auth_user_id
    from wfmon.db import Database
    from wfmon.db import projects as projects_db
    from wfmon.db.export import ExportFilter, iter_export_copy
    from wfmon.export import ExportFormat, fields_of
    from wfmon.export.progress import ExportProgress
    from wfmon.export.writers import COPY_FORMATS, export_copy_chunks
    from wfmon.search.query import parse_search
    from wfmon.settings import resolve_endpoints

    try:
        # A malformed query is a ValueError (SearchSyntaxError) naming its position.
        search = parse_search(args.query) if args.query and args.query.strip() else None
        filters = ExportFilter(
            project_id=UUID(args.project) if args.project else None,
            workflow_id=UUID(args.workflow) if args.workflow else None,
            status=args.status,
            since=args.since,
            until=args.until,
            search=search,
        )
    except ValueError as exc:
        print(f"wfmon: {exc}", file=sys.stderr)
        return 2
    fmt = ExportFormat(args.format)
    target = Path(args.output)
    if not target.parent.is_dir():
        print(f"wfmon: no directory {target.parent} for {target.name}", file=sys.stderr)
        return 2
    show = args.progress or sys.stderr.isatty()
    with Database(resolve_endpoints(settings).database_url, max_size=2) as db:
        try:
            auth_user_id, email = find_auth_user_id(db, args.user)
        except UnknownUser as exc:
            print(f"wfmon: {exc}", file=sys.stderr)
            return 2
        # The file is written beside the target and renamed once complete: a failure
        # (or Ctrl-C) leaves no half-written file under the target's name.
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink, db.as_user(auth_user_id) as conn:
                for label, key, found in (
                    ("project", filters.project_id, projects_db.get_project),
                    ("workflow", filters.workflow_id, projects_db.get_workflow),
                ):
                    if key is not None and found(conn, key) is None:
                        print(
                            f"wfmon: {label} {key} not found (or not visible to {email})",
                            file=sys.stderr,
                        )
                        tmp.unlink()
                        return 2
                progress = ExportProgress(sys.stderr) if show else None
                with closing(iter_export_copy(conn, args.kind, filters, COPY_FORMATS[fmt])) as rows:
                    for chunk in export_copy_chunks(
                        fmt,
                        fields_of(args.kind),
                        rows,
                        on_batch=progress.advance if progress is not None else None,
                    ):
                        sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if progress is not None:
        progress.finish()
    print(f"wrote {target}", file=sys.stderr)
    return 0


def cmd_namespace(args: argparse.Namespace, settings: Settings) -> int:
    """Give a namespace's unbuilt workflows to a project (docs/user-guide/own-workers.md)."""
    from wfmon.db import Database
    from wfmon.db.namespaces import UnknownProject, assign_namespace
    from wfmon.settings import resolve_endpoints

    namespace = args.namespace or settings.temporal_namespace
    try:
        with (
            Database(resolve_endpoints(settings).database_url, max_size=1) as db,
            db.as_system() as conn,
        ):
            owner = assign_namespace(conn, namespace, args.project)
    except (UnknownProject, ValueError) as exc:
        print(f"wfmon: {exc}", file=sys.stderr)
        return 2
    print(f"namespace {owner.temporal_namespace!r} -> project {owner.project_id}")
    return 0


# -- web app ----------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.api.tokens import UnknownUser, signin_url, token_for
    from wfmon.db import Database
    from wfmon.settings import resolve_endpoints

    with Database(resolve_endpoints(settings).database_url, max_size=1) as db:
        try:
            token = token_for(db, settings, args.user, args.hours)
            print(signin_url(args.link, token) if args.link else token)
        except UnknownUser as exc:
            print(f"wfmon: {exc}", file=sys.stderr)
            return 2
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from wfmon.api.app import create_app, serve
    from wfmon.api.logs import log_config
    from wfmon.api.workers import default_processes, serve_processes
    from wfmon.db import Database
    from wfmon.settings import resolve_endpoints

    # Refuse an unsafe login role here, with one clear line, rather than as a failed
    # start-up deep in the server's log.
    with Database(resolve_endpoints(settings).web_database_url, max_size=1):
        pass
    if args.workers is not None and args.workers < 1:
        print(f"wfmon: --workers must be 1 or more (got {args.workers})", file=sys.stderr)
        return 2
    processes = args.workers or default_processes()
    if processes == 1:
        serve(settings, host=args.host, port=args.port)
    else:
        create_app(settings)  # settings errors as one line here, not once per worker
        try:
            serve_processes(processes, host=args.host, port=args.port, log_config=log_config())
        except OSError as exc:
            print(
                f"wfmon: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
            )
            return 2
    return 0


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

    from wfmon.runtime.workflow import BUILDER_TASK_QUEUE

    p = sub.add_parser("worker", help="run the builder and sync workers until SIGINT/SIGTERM")
    p.add_argument("--task-queue", default=BUILDER_TASK_QUEUE)
    only = p.add_mutually_exclusive_group()
    only.add_argument("--no-sync", action="store_true", help="do not run the sync worker")
    only.add_argument(
        "--sync-only",
        action="store_true",
        help="run only the sync worker (start several to sync on more cores)",
    )
    p.add_argument(
        "--sync-page-size", type=int, default=1000, help="history events per page when syncing"
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("sync", help="sync executions from Temporal into the database")
    p.add_argument("workflow_id", nargs="?", help="sync this one execution")
    p.add_argument("--run-id", help="run of WORKFLOW_ID (default: its latest run)")
    p.add_argument("--since", type=_utc, help="executions closed after this time (ISO-8601)")
    p.add_argument("--until", type=_utc, help="... and closed at or before this time")
    p.add_argument("--running", action="store_true", help="also every running execution")
    p.add_argument("--all", action="store_true", help="every execution of the namespace")
    p.add_argument("--concurrency", type=int, default=4, help="chunks of 100 in flight")
    p.add_argument(
        "--no-worker", action="store_true", help="rely on running sync workers (no in-process one)"
    )
    p.set_defaults(func=cmd_sync)

    from wfmon.db.export import EXPORT_KINDS
    from wfmon.model import ExecutionStatus

    p = sub.add_parser(
        "export",
        help="export executions, components or attempts as CSV, JSON Lines or Parquet",
        description="Export a filtered list as a file, as the given user sees it (their "
        "row-level security). Columns: docs/user-guide/export.md.",
    )
    p.add_argument("kind", choices=EXPORT_KINDS)
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv")
    p.add_argument("--user", required=True, help="export as this user (email or auth user id)")
    p.add_argument("-o", "--output", required=True, help="file to write (replaced at the end)")
    p.add_argument("--project", help="only this project's (project id)")
    p.add_argument("--workflow", help="only this workflow's (workflow id)")
    p.add_argument("--status", choices=[s.value for s in ExecutionStatus], help="execution status")
    p.add_argument("--since", type=_utc, help="executions started at or after (ISO-8601)")
    p.add_argument("--until", type=_utc, help="executions started before (ISO-8601)")
    p.add_argument(
        "--query", help="only the executions this search matches (docs/user-guide/search.md)"
    )
    p.add_argument("--progress", action="store_true", help="progress on stderr even if not a TTY")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "namespace", help="give a namespace's own (non-builder) workflows to a project"
    )
    p.add_argument("action", choices=["assign"])
    p.add_argument("--namespace", help="Temporal namespace (default: WFMON_TEMPORAL_NAMESPACE)")
    p.add_argument("--project", type=UUID, required=True, help="project id (from its page URL)")
    p.set_defaults(func=cmd_namespace)

    p = sub.add_parser("run", help="start an execution of a workflow definition (JSON file)")
    p.add_argument("definition", help="path of a WorkflowDefinition JSON file")
    p.add_argument("--input", help="execution input, as JSON")
    p.add_argument("--wait", action="store_true", help="wait for and print the result")
    p.add_argument("--project-id")
    p.add_argument("--user-id")
    p.add_argument("--task-queue", default=BUILDER_TASK_QUEUE)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("token", help="print a development API token for a user")
    p.add_argument("--user", required=True, help="the user's email or auth user id")
    p.add_argument("--hours", type=float, default=24 * 7, help="validity (default a week)")
    p.add_argument(
        "--link",
        metavar="BASE_URL",
        help="print a sign-in link for the web app at BASE_URL (token in the URL fragment, "
        "which browsers never send to the server)",
    )
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("serve", help="serve the web app and API until SIGINT/SIGTERM")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes serving requests (default: one per core; docs/architecture/web-app.md)",
    )
    p.set_defaults(func=cmd_serve)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        func: Command = args.func
        return func(args, settings)
    except (SettingsError, ServiceError, MigrationError, UnsafeLoginRole) as exc:
        print(f"wfmon: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    """Console-script entry point: ``main()``, then exit without interpreter teardown.

    The Temporal SDK's native runtime can abort during interpreter shutdown
    (temporalio/sdk-python#300), turning a correct run into SIGABRT; everything wfmon
    opened is closed by the time ``main()`` returns, so skipping teardown loses nothing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
