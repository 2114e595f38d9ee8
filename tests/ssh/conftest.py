"""Fixtures for the SSH host: a real OpenSSH sshd and a password-protected PostgreSQL on 127.0.0.1.

The "remote" host is this machine reached through its own sshd on a free port, with a temporary
host key, one authorized client key and its own sshd_config. Workers launched through it connect
to a second PostgreSQL cluster that listens on 127.0.0.1 and requires a password (scram-sha-256),
so the password really has to travel to the remote worker.
"""

import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from psycopg import sql

from willow_core.config import Settings, parse_settings
from willow_core.hosts.deploy import DeployResult, deploy
from willow_core.hosts.ssh import SshHost

SSHD = Path("/usr/sbin/sshd")
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")
REMOTE_ROLE = "willow_remote"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )


FORWARDED_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "PIP_FIND_LINKS")
"""This machine's TLS trust and package index settings, which SSH sessions do not inherit."""


def _forwarded_environment() -> str:
    """Return a SetEnv line so that installs on the "host" reach the package index the way
    local installs do (behind a TLS-inspecting proxy, uv needs SSL_CERT_FILE)."""
    pairs = [f"{name}={os.environ[name]}" for name in FORWARDED_VARIABLES if os.environ.get(name)]
    return f"SetEnv {' '.join(pairs)}" if pairs else ""


@dataclass
class SshServer:
    """One sshd on 127.0.0.1, started and stopped by its recorded PID."""

    directory: Path
    port: int
    host_key: Path
    client_key: Path
    known_hosts: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.directory / "sshd.log"

    @property
    def config(self) -> Path:
        return self.directory / "sshd_config"

    def start(self) -> None:
        assert self.process is None, "sshd is already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """Kill sshd and its per-connection children, which hold the open sessions."""
        assert self.process is not None, "sshd is not running"
        listener = psutil.Process(self.process.pid)
        sessions = [
            child for child in listener.children(recursive=True) if child.exe() == str(SSHD)
        ]
        for process in [listener, *sessions]:
            with suppress(psutil.NoSuchProcess):
                process.kill()
        self.process.wait(10)
        psutil.wait_procs(sessions, timeout=10)
        self.process = None

    def suspend_sessions(self) -> list[psutil.Process]:
        """SIGSTOP the per-connection sshd processes: open links hang, new logins still work."""
        assert self.process is not None, "sshd is not running"
        sessions = [
            child
            for child in psutil.Process(self.process.pid).children(recursive=True)
            if child.exe() == str(SSHD)
        ]
        for session in sessions:
            session.suspend()
        return sessions

    def stop(self) -> None:
        if self.process is not None:
            self.kill()


@contextmanager
def _session_directory(name: str) -> Iterator[Path]:
    """Yield a directory that lives as long as the session and is removed afterwards.

    It is not under pytest's base temp directory, which a concurrent pytest session on the same
    machine may delete (it keeps only the newest three) or reset to mode 0700.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"willow-test-{name}-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    """A real OpenSSH sshd for the session, on a free port of 127.0.0.1."""
    if not SSHD.exists():
        pytest.fail(f"{SSHD} not found: install Debian's openssh-server package")
    PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
    with _session_directory("sshd") as directory:
        yield from _serve_sshd(directory)


def _serve_sshd(directory: Path) -> Iterator[SshServer]:
    host_key = directory / "ssh_host_ed25519_key"
    client_key = directory / "client_key"
    keygen(host_key)
    keygen(client_key)
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    port = free_port()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(
        f"[127.0.0.1]:{port} {(directory / 'ssh_host_ed25519_key.pub').read_text()}"
    )

    (directory / "sshd_config").write_text(
        f"""
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {directory / "sshd.pid"}
AuthorizedKeysFile {directory / "authorized_keys"}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
LogLevel VERBOSE
{_forwarded_environment()}
"""
    )
    server = SshServer(directory, port, host_key, client_key, known_hosts)
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class PasswordPostgres:
    """A PostgreSQL cluster on 127.0.0.1 that requires a password over TCP."""

    admin_dsn: str
    """Superuser DSN over the cluster's Unix socket (trusted)."""
    port: int
    password: str


@pytest.fixture(scope="session")
def password_postgres(postgres_cluster: str) -> Iterator[PasswordPostgres]:
    """Start a second cluster from pgserver's binaries with a TCP listener and scram auth.

    `postgres_cluster` runs first so that pgserver has prepared its binaries and, as root, its
    `pgserver` system user, which the server runs as because PostgreSQL refuses root.
    """
    from pgserver._commands import POSTGRES_BIN_PATH

    # Outside pytest's base temp directory: each pytest session that starts on this machine
    # resets that directory to mode 0700, which would lock the server's user out mid-session.
    root = Path(tempfile.mkdtemp(prefix="willow-test-pg-"))
    data = root / "data"
    data.mkdir(mode=0o700)
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        shutil.chown(data, "pgserver", "pgserver")
        root.chmod(0o755)
        # The server's user may not cd into a test's working directory, which only root enters.
        run_as = {"user": "pgserver", "cwd": root}

    port = free_port()
    subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=utf8",
        ],
        check=True,
        capture_output=True,
        **run_as,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
    subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(data / "log"),
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
        **run_as,
    )

    password = f"pw-{secrets.token_hex(12)}"
    admin_dsn = psycopg.conninfo.make_conninfo(host=str(data), port=port, user="postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(REMOTE_ROLE), sql.Literal(password)
            )
        )
    yield PasswordPostgres(admin_dsn=admin_dsn, port=port, password=password)

    # Fast shutdown by the postmaster's recorded PID (SIGINT), then remove the cluster.
    postmaster_pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    os.kill(postmaster_pid, signal.SIGINT)
    with suppress(psutil.NoSuchProcess):
        psutil.Process(postmaster_pid).wait(30)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def remote_dsn(
    password_postgres: PasswordPostgres, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh database owned by the password role; its DSN has no password, $PGPASSWORD has it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(password_postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(REMOTE_ROLE)
            )
        )
    monkeypatch.setenv("PGPASSWORD", password_postgres.password)
    yield psycopg.conninfo.make_conninfo(
        host="127.0.0.1", port=password_postgres.port, dbname=name, user=REMOTE_ROLE
    )
    with psycopg.connect(password_postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def remote_root() -> Iterator[Path]:
    """The directory on the "remote" host for the venv, logs and wheels, shared by the session."""
    with _session_directory("remote") as directory:
        yield directory


def gpu_host_section(sshd: SshServer, remote_root: Path, **overrides: Any) -> dict[str, Any]:
    """Return a [gpu_host] section that reaches `sshd` with the authorized key."""
    section: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": getpass.getuser(),
        "key_path": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts),
        "python": sys.executable,
        "venv": str(remote_root / "venv"),
        "remote_dir": str(remote_root),
        "connect_timeout": 5,
        "reconnect_max_seconds": 2,
    }
    section.update(overrides)
    return section


def remote_settings(
    sshd: SshServer,
    remote_root: Path,
    dsn: str | None,
    *,
    total: int = 20_000,
    batch_size: int = 500,
    seed: int = 31_337,
    **gpu_overrides: Any,
) -> Settings:
    """Return settings for runs on the sshd "host" against `dsn` (None: the embedded default)."""
    data: dict[str, Any] = {
        "generation": {"total": total, "batch_size": batch_size, "seed": seed, "workers": 1},
        "gpu_host": gpu_host_section(sshd, remote_root, **gpu_overrides),
    }
    if dsn is not None:
        data["postgres"] = {"dsn": dsn, "connect_timeout": 5}
    return parse_settings(data)


@pytest.fixture(scope="session")
def deployed(sshd: SshServer, remote_root: Path) -> Iterator[DeployResult]:
    """Deploy Willow into the remote venv once per session (creating the venv and its packages)."""
    settings = parse_settings({"gpu_host": gpu_host_section(sshd, remote_root)})
    host = SshHost(settings.gpu_host)
    try:
        yield deploy(host)
    finally:
        host.close()
