"""Projects: your projects, one project with its workflows, project statistics, and the
caller's identity."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from wfmon.api import views
from wfmon.api.deps import CurrentUser, UserConn
from wfmon.api.errors import ERROR_RESPONSES
from wfmon.api.models import Me, ProjectDetail, ProjectOut, ProjectStatsOut
from wfmon.db.accounts import current_user_id

router = APIRouter(prefix="/api", tags=["projects"], responses=ERROR_RESPONSES)


@router.get("/me", response_model=Me)
def me(user: CurrentUser, conn: UserConn) -> Me:
    """Who the token says you are (``user_id`` is None when no wfmon user has that id)."""
    return Me(auth_user_id=user.auth_user_id, user_id=current_user_id(conn), email=user.email)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(conn: UserConn) -> list[ProjectOut]:
    return views.projects(conn)


@router.get("/projects/{project_id}", response_model=ProjectDetail)
def get_project(project_id: UUID, conn: UserConn) -> ProjectDetail:
    return views.project_detail(conn, project_id)


@router.get("/projects/{project_id}/statistics", response_model=ProjectStatsOut)
def get_project_statistics(project_id: UUID, conn: UserConn) -> ProjectStatsOut:
    """Most used workflows, components and task queues, the longest run, failures and a
    daily trend; plus the statistics table's row when the data platform has built it."""
    return views.project_stats(conn, project_id)
