"""``wfmon demo``: bring the platform up on embedded services and show where it runs.

Everything the demo starts is stopped (by PID) when it ends: on Ctrl-C, SIGTERM, or when
``--exit-after`` seconds have passed (used by tests).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from wfmon.dev.services import EmbeddedServices, Endpoints
from wfmon.settings import Settings


@dataclass
class DemoOptions:
    exit_after: float | None = None


def run_demo(settings: Settings, options: DemoOptions, out: Callable[[str], None] = print) -> int:
    from wfmon.cli import mask_url
    from wfmon.migrate import apply_migrations

    services = EmbeddedServices(settings.state_path)
    started_here = not all(st.healthy for st in services.status())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        out("starting embedded PostgreSQL, Temporal and Redis ...")
        ep: Endpoints = services.up()
        applied = apply_migrations(ep.database_url)
        out(f"schema up to date ({len(applied)} migration(s) applied now)")
        out("")
        out("wfmon demo is running:")
        out(f"  PostgreSQL        {mask_url(ep.database_url)}")
        out(f"  Temporal          {ep.temporal_address}")
        if ep.temporal_ui_url:
            out(f"  Temporal Web UI   {ep.temporal_ui_url}")
        out(f"  Redis             {ep.redis_url}")
        out(f"  state directory   {settings.state_path}")
        out("")
        out("Press Ctrl-C to stop." if options.exit_after is None else "")
        stop.wait(options.exit_after)
    finally:
        if started_here:
            out("stopping embedded services ...")
            services.down()
        else:
            out("embedded services were already running; leaving them up")
    return 0
