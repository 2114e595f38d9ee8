"""The embedded graph server used when `[graph] uri` is not set: ArcadeDB with its Bolt plugin.

The `arcadedb-embedded` package ships ArcadeDB's jars, including the Neo4j Bolt plugin, and a Java
runtime. Willow runs that runtime as a child process bound to 127.0.0.1, so the official `neo4j`
driver talks to it exactly as it talks to Neo4j. Everything lives in one directory (by default
`arcadedb/` under the user data directory):

    root-password   generated once, mode 0600; ArcadeDB reads it through rootPasswordPath, so the
                    password never appears on a command line
    server.json     the running server's PID, process start time and ports (mode 0600)
    server.log      the server's standard output and error
    server.lock     serialises starts, so two Willow processes never start two servers
    server/         ArcadeDB's root path: databases, config, logs

`ensure_started` reuses a server that another Willow process started and only starts one when
none is running. `stop` ends the server by the PID recorded in `server.json`, after checking that
the process there is still that server.
"""

import base64
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from willow_core.errors import GraphError
from willow_core.paths import data_dir

log = logging.getLogger("willow.graph.embedded")

HOST = "127.0.0.1"
ROOT_USER = "root"
DEFAULT_DATABASE = "willow"

DEFAULT_START_TIMEOUT = 120.0
"""Seconds a start may take before it is abandoned; a cold JVM on 2 cores needs about 3."""

STOP_TIMEOUT = 30.0
"""Seconds between SIGTERM and SIGKILL when stopping the server."""

_MAIN_CLASS = "com.arcadedb.server.ArcadeDBServer"
_BOLT_PLUGIN = "Bolt:com.arcadedb.bolt.BoltProtocolPlugin"
_DATABASE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class EmbeddedServerInfo:
    """A running embedded server, as recorded in `server.json`."""

    pid: int
    create_time: float
    """The process's start time from psutil; with the PID it identifies the process."""
    bolt_port: int
    http_port: int
    root_path: str
    started_at: str
    """ISO 8601 time at which Willow started the server."""

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"


class EmbeddedGraphServer:
    """Starts, finds and stops the embedded ArcadeDB server of one directory.

    Args:
        directory: where the password, state file, log and databases live; by default
            `arcadedb/` under the user data directory.
        heap_mb: maximum Java heap of a server this object starts.
        start_timeout: seconds to wait for a new server to accept connections.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        heap_mb: int = 2048,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.directory = directory if directory is not None else data_dir() / "arcadedb"
        self.heap_mb = heap_mb
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def password_file(self) -> Path:
        return self.directory / "root-password"

    @property
    def state_file(self) -> Path:
        return self.directory / "server.json"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def root_path(self) -> Path:
        return self.directory / "server"

    def password(self) -> str:
        """Return the root password, generating it (mode 0600) on first use."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass

        password = secrets.token_urlsafe(32)
        try:
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.password_file.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password)

        # ArcadeDB reads rootPasswordPath only when it creates the root user. A users file left
        # from an earlier password would make the new one useless, so the root user is recreated.
        users = self.root_path / "config" / "server-users.jsonl"
        if users.exists():
            log.warning("password file was missing; resetting the root user in %s", users)
            users.unlink()
        return password

    def running(self) -> EmbeddedServerInfo | None:
        """Return the recorded server if its process is still alive, else None."""
        info = self._read_state()
        if info is None or not self._is_our_process(info):
            return None
        return info

    def ensure_started(self) -> tuple[EmbeddedServerInfo, bool]:
        """Reuse the running server or start one; return it and whether this call started it.

        Raises:
            GraphError: the server did not start or did not accept connections in time; the
                message names the log file.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._reap()
        with self._start_lock():
            info = self.running()
            if info is not None and _accepts_connections(info.bolt_port):
                log.info("reusing the embedded graph server (pid %d) at %s", info.pid, info.uri)
                return info, False
            if info is not None:
                log.warning("embedded graph server pid %d does not respond; restarting", info.pid)
                self._terminate(info)
            self.state_file.unlink(missing_ok=True)
            return self._start(), True

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop the recorded server by its PID; return False when none was running."""
        info = self.running()
        self.state_file.unlink(missing_ok=True)
        if info is None:
            self._reap()
            return False
        self._terminate(info, timeout)
        log.info("stopped the embedded graph server (pid %d)", info.pid)
        return True

    def database_exists(self, name: str) -> bool:
        """Return whether the running server has database `name`."""
        answer = self._admin("GET", f"/api/v1/exists/{_checked_database_name(name)}")
        return bool(answer.get("result"))

    def create_database(self, name: str) -> None:
        """Create database `name` on the running server unless it exists.

        Databases are created through ArcadeDB's HTTP API, because Bolt has no command for it.
        """
        if not self.database_exists(name):
            command = f"create database {_checked_database_name(name)}"
            self._admin("POST", "/api/v1/server", {"command": command})
            log.info("created graph database %s", name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` from the running server if it exists."""
        if self.database_exists(name):
            command = f"drop database {_checked_database_name(name)}"
            self._admin("POST", "/api/v1/server", {"command": command})

    def _start(self) -> EmbeddedServerInfo:
        self.password()  # generated before the first start; the server reads the file itself
        self.root_path.mkdir(parents=True, exist_ok=True)
        bolt_port, http_port = _free_port(), _free_port()
        command = self._command(bolt_port, http_port)

        log.info("starting the embedded graph server on %s:%d", HOST, bolt_port)
        started = time.monotonic()
        with self.log_file.open("ab") as log_handle:
            # A session of its own keeps Ctrl-C in the terminal from killing the server before
            # Willow has stopped it cleanly.
            process = subprocess.Popen(
                command,
                cwd=self.root_path,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._process = process
        info = EmbeddedServerInfo(
            pid=process.pid,
            create_time=psutil.Process(process.pid).create_time(),
            bolt_port=bolt_port,
            http_port=http_port,
            root_path=str(self.root_path),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

        try:
            self._wait_until_ready(process, info)
            self._write_state(info)
            self.create_database(DEFAULT_DATABASE)
        except BaseException:
            self._terminate(info)
            self.state_file.unlink(missing_ok=True)
            raise

        log.info(
            "embedded graph server pid %d ready at %s in %.1f s",
            process.pid,
            info.uri,
            time.monotonic() - started,
        )
        return info

    def _command(self, bolt_port: int, http_port: int) -> list[str]:
        java, jars = _runtime()
        settings = {
            "arcadedb.server.rootPath": str(self.root_path),
            "arcadedb.server.rootPasswordPath": str(self.password_file),
            "arcadedb.server.mode": "production",
            "arcadedb.server.plugins": _BOLT_PLUGIN,
            "arcadedb.server.httpIncomingHost": HOST,
            "arcadedb.server.httpIncomingPort": str(http_port),
            "arcadedb.server.logsDirectory": str(self.root_path / "log"),
            "arcadedb.bolt.host": HOST,
            "arcadedb.bolt.port": str(bolt_port),
            "arcadedb.bolt.defaultDatabase": DEFAULT_DATABASE,
        }
        return [
            str(java),
            f"-Xmx{self.heap_mb}m",
            "-Dfile.encoding=UTF-8",
            "-Djava.awt.headless=true",
            # ArcadeDB's own server.sh opens these packages to the engine.
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
            "--add-opens=java.base/java.nio.channels.spi=ALL-UNNAMED",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            f"-XX:ErrorFile={self.root_path / 'log' / 'hs_err_pid%p.log'}",
            "-cp",
            str(jars / "*"),
            *(f"-D{key}={value}" for key, value in settings.items()),
            _MAIN_CLASS,
        ]

    def _wait_until_ready(self, process: subprocess.Popen[bytes], info: EmbeddedServerInfo) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise GraphError(
                    f"the embedded graph server exited with status {process.returncode} while "
                    f"starting; see {self.log_file}"
                )
            if _accepts_connections(info.bolt_port) and self._http_ready(info):
                return
            time.sleep(0.1)
        raise GraphError(
            f"the embedded graph server did not accept connections on {HOST}:{info.bolt_port} "
            f"within {self.start_timeout:.0f} s; see {self.log_file}"
        )

    def _http_ready(self, info: EmbeddedServerInfo) -> bool:
        try:
            ready = f"{info.http_url}/api/v1/ready"
            with urllib.request.urlopen(ready, timeout=2) as response:  # noqa: S310 - http on 127.0.0.1
                return bool(response.status < 300)
        except (urllib.error.URLError, OSError):
            return False

    def _admin(
        self, method: str, path: str, body: dict[str, str] | None = None
    ) -> dict[str, object]:
        info = self.running()
        if info is None:
            raise GraphError(f"the embedded graph server in {self.directory} is not running")
        token = base64.b64encode(f"{ROOT_USER}:{self.password()}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - a fixed http:// URL on 127.0.0.1
            f"{info.http_url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer: dict[str, object] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:200]
            raise GraphError(
                f"the embedded graph server rejected {method} {path}: HTTP {error.code} {detail}"
            ) from error
        except (urllib.error.URLError, OSError) as error:
            raise GraphError(
                f"could not reach the embedded graph server at {info.http_url}: {error}"
            ) from error

    def _terminate(self, info: EmbeddedServerInfo, timeout: float = STOP_TIMEOUT) -> None:
        try:
            process = psutil.Process(info.pid)
            if process.create_time() != info.create_time:
                return  # the PID now belongs to another process
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except psutil.TimeoutExpired:
                log.warning(
                    "graph server pid %d ignored SIGTERM for %.0f s; killing", info.pid, timeout
                )
                process.kill()
                process.wait(timeout)
        except psutil.NoSuchProcess:
            pass
        if self._process is not None and self._process.pid == info.pid:
            self._process.wait()  # reaps the child; psutil may have done so already
            self._process = None

    def _reap(self) -> None:
        """Forget a child this object started once it has exited, collecting its status.

        Another Willow process (or another object) may have stopped it by PID in the meantime.
        """
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    def _is_our_process(self, info: EmbeddedServerInfo) -> bool:
        try:
            process = psutil.Process(info.pid)
            if process.create_time() != info.create_time:
                return False
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return f"-Darcadedb.server.rootPath={self.root_path}" in process.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def _read_state(self) -> EmbeddedServerInfo | None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return EmbeddedServerInfo(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            log.warning("ignoring unreadable %s: %s", self.state_file, error)
            return None

    def _write_state(self, info: EmbeddedServerInfo) -> None:
        temporary = self.state_file.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(info), handle)
        os.replace(temporary, self.state_file)

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        with (self.directory / "server.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _runtime() -> tuple[Path, Path]:
    """Return the bundled `java` executable and the jars directory of `arcadedb-embedded`."""
    try:
        from arcadedb_embedded import jvm  # type: ignore[import-untyped]

        jars = Path(jvm.get_jar_path())
        libjvm = Path(jvm.get_bundled_jre_lib_path())
    except Exception as error:  # the package raises its own ArcadeDBError and plain OSErrors
        raise GraphError(
            f"the arcadedb-embedded package is missing or incomplete ({error}); reinstall Willow "
            "or set [graph] uri to use another server"
        ) from error

    # libjvm sits at <jre>/lib/server/libjvm.so (or .dylib); java at <jre>/bin/java.
    java = libjvm.parents[2] / "bin" / ("java.exe" if os.name == "nt" else "java")
    if not java.is_file():
        raise GraphError(f"the Java runtime of arcadedb-embedded was not found at {java}")
    return java, jars


def _free_port() -> int:
    # NOTE: another process could take the port between this check and the server's bind. The
    # start then fails with the port named in server.log, and the next start picks another.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _checked_database_name(name: str) -> str:
    if not name or not set(name) <= _DATABASE_NAME_CHARACTERS:
        raise GraphError(
            f"invalid graph database name {name!r}: use lower-case letters, digits and _"
        )
    return name
