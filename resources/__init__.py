"""Dagster resources: thin ``ConfigurableResource`` wrappers over wfmon's clients.

Tests and deployments swap configuration (URLs, addresses), never code.
"""

from resources.connections import ProjectConnectionsResource
from resources.database import WfmonDatabaseResource
from resources.dbt import WfmonDbtResource
from resources.io_manager import WfmonTablesIOManager
from resources.temporal import TemporalResource

__all__ = [
    "ProjectConnectionsResource",
    "TemporalResource",
    "WfmonDatabaseResource",
    "WfmonDbtResource",
    "WfmonTablesIOManager",
]
