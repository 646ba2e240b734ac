"""Editing workflows: validate a definition as the runtime will run it, save it as a new
version, compare versions, and start a run of the current version.

The web app's JSON API and its pages both use this package (``wfmon.api.routers.workflows``);
SQL lives in :mod:`wfmon.db.versions` and :mod:`wfmon.db.accounts`.
"""
