"""The Dagster code location: every asset, check, sensor, schedule and resource of wfmon.

Assembled in one place; the pieces live in ``assets/``, ``resources/`` and the sibling
modules of this package.
"""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions(assets=[], resources={})
