"""The local stack of a load run: a PostgreSQL cluster and a Redis server of its
own (never the machine's usual ones: they are stopped and restarted on purpose),
and the production server (gunicorn, debug off), all in a temporary folder."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from portal import processes  # noqa: E402 (the repository's root is on the path now)
from portal.processes import HOST, free_port  # noqa: E402


class SetupError(RuntimeError):
    pass


def wait_for_port(
    port: int, seconds: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    try:
        processes.wait_for_port(port, seconds=seconds, process=process)
    except processes.ServerDidNotStart as error:
        raise SetupError(f"{process.args if process else port!r}: {error}") from None


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the postgres user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _pg_bindir() -> Path:
    """The folder of initdb, pg_ctl and createdb (``initdb`` on the PATH may be a
    lone link to it)."""
    found = shutil.which("initdb")
    candidates = [str(Path(found).resolve())] if found else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        folder = Path(candidate).parent
        if all((folder / tool).exists() for tool in ("pg_ctl", "createdb")):
            return folder
    raise SetupError("initdb, pg_ctl and createdb were not found: install PostgreSQL's server")


class Postgres:
    """A throw-away cluster (initdb) on a port of its own, trust authentication on
    127.0.0.1, removed at the end."""

    def __init__(self, folder: Path) -> None:
        self.bindir = _pg_bindir()
        self.folder = folder / "postgres"
        self.data = self.folder / "data"
        self.port = free_port()
        self.log = self.folder / "server.log"

    def url(self, name: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{name}"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 (our own arguments)
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self, database: str) -> None:
        self.folder.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(  # noqa: S603
            _as_postgres(
                [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        options = (
            f"-c listen_addresses={HOST} -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c max_connections=200"
        )
        self._pg_ctl("start", "-w", "-l", str(self.log), "-o", options)
        subprocess.run(  # noqa: S603
            [str(self.bindir / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres",
             database],
            check=True,
        )  # fmt: skip

    def restart(self) -> None:
        self._pg_ctl("restart", "-w", "-m", "fast")

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl("stop", "-w", "-m", "immediate")


class Redis:
    """A redis-server of its own on a free port, no persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "redis"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        server = shutil.which("redis-server")
        if not server:
            raise SetupError("redis-server was not found: install Redis")
        self.process = subprocess.Popen(  # noqa: S603
            [server, "--bind", HOST, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, 10, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def _client_sockets(port: int) -> set[str]:
    """The socket inodes of the established connections to ``port`` (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    return inodes


def _sockets_of(pid: int) -> set[str]:
    """The socket inodes a process holds open."""
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


class Gunicorn:
    """The production server: gunicorn, sync workers, debug off, made-up secrets,
    no HTTPS redirect (nothing terminates TLS on a local run)."""

    def __init__(self, folder: Path, database_url: str, redis_url: str, workers: int) -> None:
        self.folder = folder
        self.port = free_port()
        self.workers = workers
        self.errors = folder / "server-errors.log"
        self.process: subprocess.Popen[bytes] | None = None
        key_path = folder / "oauth-key.pem"
        from accounts.oauth_keys import development_key

        self.env = {
            **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "SITE_URL": f"http://localhost:{self.port}",
            "OAUTH_PRIVATE_KEY": development_key(key_path),
            "DATABASE_URL": database_url,
            "PORTAL_VAR_DIR": str(folder / "var"),
            # Every virtual user signs in from this one address.
            "RATE_LIMIT_LOGIN": "100000/m/ip",
        }
        self.env.pop("OAUTH_PRIVATE_KEY_FILE", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def manage(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        result = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SetupError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn", "-c", "portal/gunicorn.conf.py",
            "portal.wsgi:application",
            f"--bind={HOST}:{self.port}", f"--workers={self.workers}",
            "--worker-class=sync", "--log-level=warning",
        ]  # fmt: skip
        with self.errors.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        wait_for_port(self.port, 60, self.process)
        # Every worker has loaded the application once it answers.
        for _ in range(self.workers * 2):
            with urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=30) as answer:  # noqa: S310
                answer.read()

    def worker_pids(self) -> list[int]:
        return [] if self.process is None else processes.child_pids(self.process.pid)

    def worker_rss_mb(self) -> list[float]:
        return processes.rss_mb(self.worker_pids())

    def kill_one_worker(self, wait: float = 10.0) -> tuple[int, bool]:
        """SIGKILLs a worker, one that holds a client's connection (is serving a
        request) if one is seen within ``wait`` seconds, the crash that costs most;
        returns its pid and whether it was serving."""
        deadline = time.monotonic() + wait
        while True:
            pids = self.worker_pids()
            if not pids:
                raise SetupError("no gunicorn worker to kill")
            clients = _client_sockets(self.port)
            busy = [pid for pid in pids if clients and _sockets_of(pid) & clients]
            if busy or time.monotonic() > deadline:
                victim = (busy or pids)[0]
                os.kill(victim, signal.SIGKILL)
                return victim, bool(busy)
            time.sleep(0.002)

    def stop(self) -> None:
        if self.process is None:
            return
        processes.stop(self.process)
        self.process = None
