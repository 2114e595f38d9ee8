"""One SSH connection to the generator host, kept open on a private event loop thread.

`SshLink` connects when first used, reconnects with exponential backoff when the link drops and
reports its state (connecting, connected, retrying, failed) without waiting. Blocking callers on
any thread run coroutines on its loop through `call`. Host key and login failures are permanent:
the link waits for the next operation that needs it instead of retrying on its own.

The host key must already be in known_hosts. An unknown or changed key rejects the connection
with the key's fingerprint and the command that trusts it. No setting turns the check off, and
`UserKnownHostsFile none` in ~/.ssh/config does not either, because the file is always passed.
"""

import asyncio
import concurrent.futures
import contextlib
import getpass
import logging
import os
import posixpath
import shlex
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from willow_core.config import GpuHostSettings
from willow_core.errors import HostError
from willow_core.hosts.base import ConnectionState, LinkStatus

log = logging.getLogger("willow.hosts.ssh_link")

T = TypeVar("T")

KEEPALIVE_SECONDS = 5.0
"""Seconds between SSH keepalives; three unanswered ones close a dead link."""

PROBE_COMMAND_TIMEOUT = 30.0
"""Seconds the first command on a new connection (`uname -n`, `$HOME`) may take."""


class SshConnectError(HostError):
    """The SSH connection could not be opened; a later attempt may succeed."""

    title = "SSH connection failed"
    permanent = False
    """Whether retrying without a change on either side cannot help."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        """A few words for the connection state in the UI header."""


class HostKeyError(SshConnectError):
    """The host's key is not in known_hosts, or differs from the one there."""

    title = "SSH host key not trusted"
    permanent = True


class LoginError(SshConnectError):
    """The host rejected the login, or the configured key cannot be used."""

    title = "SSH login failed"
    permanent = True


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """One line for an error message: the first `error:` line of stderr (as pip and uv
        print them), else the last non-empty line of stderr or stdout."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            for line in lines:
                if line.lower().startswith("error:"):
                    return line
            if lines:
                return lines[-1]
        return f"exit status {self.exit_status}"


class SshLink:
    """The connection to `[gpu_host] host`, reconnected by a supervisor task on its own loop."""

    def __init__(self, settings: GpuHostSettings, on_connected: Callable[[str, str], None]) -> None:
        """Prepare the link; nothing connects before its first use.

        Args:
            settings: the `[gpu_host]` section; `host` must be set.
            on_connected: called on the loop thread with the host's own name (`uname -n`) and
                the SSH user's home directory after each successful connection.
        """
        if settings.host is None:
            raise ValueError("SshLink needs [gpu_host] host")
        self.settings = settings
        self.name: str = settings.host
        self.address = f"{settings.host}:{settings.port}"
        self._on_connected = on_connected

        self._state = ConnectionState(LinkStatus.CONNECTING)
        self._state_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

        # Owned by the event loop thread.
        self._conn: asyncssh.SSHClientConnection | None = None
        self._attempts = 0
        self._last_error: SshConnectError | None = None
        self._changed: asyncio.Condition | None = None
        self._wake: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None

    # Blocking API, callable from any thread.

    def state(self) -> ConnectionState:
        """Return the state of the link, starting the connection on first use."""
        self._ensure_loop()
        with self._state_lock:
            return self._state

    @property
    def is_open(self) -> bool:
        """Whether a connection is open right now (it may still turn out to be dead)."""
        return self._conn is not None and self._loop is not None

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the link's event loop and return its result.

        Raises:
            HostError: the coroutine raised it, or it did not finish within `timeout` seconds.
        """
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise HostError(
                f"{self.name} did not respond within {timeout:.0f} s; the SSH link may be down"
            ) from None

    def outer_timeout(self, seconds: float) -> float:
        """Seconds a blocking call waits: an operation of `seconds` after a connection attempt."""
        return seconds + self.attempt_timeout() + 5

    def attempt_timeout(self) -> float:
        """Seconds one connection attempt may take: the connection, and after a host key
        rejection a second one that reads the key's fingerprint."""
        return 2.0 * self.settings.connect_timeout + 5

    def close(self) -> None:
        """Close the connection and stop the event loop thread."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            self._loop = None
            self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()

    # Coroutines for operations, run on the link's loop through `call`.

    async def connection(self, *, wait: bool = True) -> asyncssh.SSHClientConnection:
        """Return the open connection, or start an attempt now, wait for it and raise its error.

        With `wait=False` a missing connection raises at once and no attempt is hurried.
        """
        if self._conn is not None:
            return self._conn
        assert self._changed is not None and self._wake is not None
        if not wait:
            raise SshConnectError(
                f"{self.name} is not connected ({self.state().describe()})",
                "not connected",
            )

        async with self._changed:
            target = self._attempts + 1
            self._wake.set()
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: self._conn is not None or self._attempts >= target
                    ),
                    self.attempt_timeout(),
                )
            except TimeoutError:
                raise SshConnectError(
                    f"could not connect to {self.address} within {self.settings.connect_timeout} s",
                    "timed out",
                ) from None

        # Re-read through a call: the attempt ran while this coroutine waited.
        conn = self._current_connection()
        if conn is not None:
            return conn
        error = self._last_error or SshConnectError(
            f"could not connect to {self.address}", "not connected"
        )
        raise type(error)(error.message, error.reason)

    async def run(
        self,
        command: str,
        *,
        input: str | None = None,
        timeout: float,
        operation: str,
        wait: bool = True,
    ) -> CommandResult:
        """Run a shell command line; a non-zero exit status is returned, not raised.

        Raises:
            HostError: the host cannot be reached, the link dropped or `timeout` passed.
        """
        conn = await self.connection(wait=wait)
        try:
            result = await asyncio.wait_for(conn.run(command, input=input, check=False), timeout)
        except TimeoutError:
            raise HostError(
                f"{operation} on {self.name} did not finish within {timeout:.0f} s"
            ) from None
        except (OSError, asyncssh.Error) as error:
            raise HostError(
                f"{operation} on {self.name} failed: the SSH link dropped "
                f"({_describe_os_error(error)}); it reconnects by itself, try again"
            ) from error
        return CommandResult(
            exit_status=result.exit_status if result.exit_status is not None else -1,
            stdout=_text(result.stdout),
            stderr=_text(result.stderr),
        )

    async def put(self, local: Path, remote_dir: str) -> str:
        """Copy a local file into `remote_dir` over SFTP, creating it; return the remote path."""
        conn = await self.connection()
        target = posixpath.join(remote_dir, local.name)
        try:
            async with conn.start_sftp_client() as sftp:
                await sftp.makedirs(remote_dir, exist_ok=True)
                await sftp.put(str(local), target)
        except (OSError, asyncssh.Error) as error:
            raise HostError(
                f"copying {local.name} to {remote_dir} on {self.name} failed: "
                f"{_describe_os_error(error)}"
            ) from error
        return target

    # The event loop thread and the connection supervisor.

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=f"ssh-{self.name}", daemon=True
                )
                thread.start()
                asyncio.run_coroutine_threadsafe(self._start_supervisor(), loop).result(5)
                self._loop, self._thread = loop, thread
            return self._loop

    async def _start_supervisor(self) -> None:
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ssh-{self.name}")

    def _set_state(self, state: ConnectionState) -> None:
        with self._state_lock:
            self._state = state

    async def _supervise(self) -> None:
        assert self._wake is not None
        failures = 0
        while True:
            self._set_state(ConnectionState(LinkStatus.CONNECTING))
            try:
                conn = await self._open_or_explain()
            except SshConnectError as error:
                self._last_error = error
                if error.permanent:
                    log.error("SSH connection to %s failed: %s", self.address, error.message)
                    self._set_state(ConnectionState(LinkStatus.FAILED, error.reason))
                    await self._attempt_finished()
                    # Wait for an operation to ask again, e.g. after known_hosts was fixed.
                    await self._wake.wait()
                    self._wake.clear()
                    failures = 0
                    continue

                failures += 1
                delay = min(self.settings.reconnect_max_seconds, 2.0 ** (failures - 1))
                if failures == 1 or failures % 10 == 0:
                    log.warning(
                        "SSH connection to %s failed (%d in a row), retrying in %.0f s: %s",
                        self.address,
                        failures,
                        delay,
                        error.message,
                    )
                self._set_state(
                    ConnectionState(
                        LinkStatus.RETRYING, error.reason, retry_at=time.monotonic() + delay
                    )
                )
                await self._attempt_finished()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
                continue

            failures = 0
            self._conn = conn
            self._last_error = None
            self._set_state(ConnectionState(LinkStatus.CONNECTED))
            log.info("connected to %s over SSH", self.address)
            await self._attempt_finished()

            await conn.wait_closed()
            self._conn = None
            self._last_error = SshConnectError(
                f"lost the SSH connection to {self.address}; reconnecting", "connection lost"
            )
            log.warning("lost the SSH connection to %s; reconnecting", self.address)

    async def _open_or_explain(self) -> asyncssh.SSHClientConnection:
        """Open a connection; an unexpected exception becomes a retryable SshConnectError, so
        that it cannot end the supervisor."""
        try:
            return await self._open()
        except SshConnectError:
            raise
        except Exception as error:
            log.exception("unexpected error while connecting to %s", self.address)
            raise SshConnectError(
                f"connecting to {self.address} failed unexpectedly: {error!r}", "unexpected error"
            ) from error

    async def _attempt_finished(self) -> None:
        assert self._changed is not None and self._wake is not None
        async with self._changed:
            self._attempts += 1
            # Requests made during this attempt are served by it; later ones set _wake again.
            self._wake.clear()
            self._changed.notify_all()

    def _current_connection(self) -> asyncssh.SSHClientConnection | None:
        return self._conn

    async def _shutdown(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
            self._conn = None

    # Opening a connection.

    async def _open(self) -> asyncssh.SSHClientConnection:
        settings = self.settings
        assert settings.host is not None
        known_hosts, known_hosts_path = self._read_known_hosts()
        keys = self._read_client_key()

        options: dict[str, object] = {
            "known_hosts": known_hosts,
            "connect_timeout": settings.connect_timeout,
            "keepalive_interval": KEEPALIVE_SECONDS,
            "keepalive_count_max": 3,
        }
        if settings.user is not None:
            options["username"] = settings.user
        if keys is not None:
            # Only the configured key: an agent's keys would make the login depend on its contents.
            options["client_keys"] = keys
            options["agent_path"] = None

        try:
            conn = await asyncssh.connect(settings.host, settings.port, **options)
        except asyncssh.HostKeyNotVerifiable as error:
            raise await self._host_key_error(known_hosts, known_hosts_path) from error
        except asyncssh.PermissionDenied as error:
            raise self._login_error() from error
        except (OSError, TimeoutError, asyncssh.Error) as error:
            reason = _describe_os_error(error)
            raise SshConnectError(
                f"could not reach {self.address} within {settings.connect_timeout} s: {reason}; "
                "check [gpu_host] host and port, the network, and that sshd runs on the host",
                reason,
            ) from error

        try:
            await self._probe(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _read_known_hosts(self) -> tuple[asyncssh.SSHKnownHosts, Path]:
        path = self.settings.known_hosts or Path.home() / ".ssh" / "known_hosts"
        try:
            return asyncssh.read_known_hosts(str(path)), path
        except FileNotFoundError:
            return asyncssh.import_known_hosts(""), path
        except (OSError, ValueError, asyncssh.KeyImportError) as error:
            raise HostKeyError(
                f"cannot read known_hosts file {path}: {error}; fix the file or set "
                "[gpu_host] known_hosts",
                "known_hosts unreadable",
            ) from error

    def _read_client_key(self) -> list[asyncssh.SSHKey] | None:
        path = self.settings.key_path
        if path is None:
            return None
        try:
            return [asyncssh.read_private_key(str(path))]
        except FileNotFoundError as error:
            raise LoginError(
                f"[gpu_host] key_path {path}: file not found; check the path", "key not found"
            ) from error
        except asyncssh.KeyImportError as error:
            if "passphrase" in str(error).lower():
                raise LoginError(
                    f"[gpu_host] key_path {path} is protected by a passphrase; add it to "
                    f"ssh-agent (ssh-add {path}) and remove key_path from the config",
                    "key needs a passphrase",
                ) from error
            raise LoginError(
                f"[gpu_host] key_path {path} is not a usable private key: {error}",
                "invalid key",
            ) from error
        except OSError as error:
            raise LoginError(
                f"[gpu_host] key_path {path}: cannot read: {error.strerror}", "key unreadable"
            ) from error

    def _login_error(self) -> LoginError:
        user = self.settings.user or getpass.getuser()
        if self.settings.key_path is not None:
            credentials = f"key {self.settings.key_path}"
        else:
            credentials = "the keys in ssh-agent and ~/.ssh"
        return LoginError(
            f"{self.address} rejected the SSH login as {user} with {credentials}; add the "
            f"public key to ~{user}/.ssh/authorized_keys on the host, or set [gpu_host] user "
            "and key_path",
            f"login as {user} rejected",
        )

    async def _host_key_error(
        self, known_hosts: asyncssh.SSHKnownHosts, known_hosts_path: Path
    ) -> HostKeyError:
        host, port = self.settings.host or "", self.settings.port
        try:
            key = await asyncio.wait_for(
                asyncssh.get_server_host_key(host, port), self.settings.connect_timeout
            )
        except (OSError, TimeoutError, asyncssh.Error):
            key = None

        trusted = known_hosts.match(host, host, port if port != 22 else None)[0]
        pattern = host if port == 22 else f"[{host}]:{port}"
        if key is None:
            presented, key_type = "a key whose fingerprint could not be read", "ed25519"
        else:
            presented = f"{key.get_algorithm()} key {key.get_fingerprint('sha256')}"
            key_type = _keyscan_type(key.get_algorithm())
        check = f"ssh-keygen -lf /etc/ssh/ssh_host_{key_type}_key.pub"
        trust = f"ssh-keyscan -p {port} -t {key_type} {host} >> {known_hosts_path}"

        if trusted:
            return HostKeyError(
                f"the SSH host key of {self.address} has CHANGED: the host presents {presented}, "
                f"which differs from the key in {known_hosts_path}. This can be an attack. "
                f"If the host was reinstalled, compare the fingerprint with `{check}` on the host, "
                f"then run: ssh-keygen -R '{pattern}' -f {known_hosts_path} && {trust}",
                "host key changed",
            )
        fingerprint = key.get_fingerprint("sha256") if key is not None else "unknown"
        return HostKeyError(
            f"the SSH host key of {self.address} is not in {known_hosts_path}; the host presents "
            f"{presented}. Compare it with `{check}` on the host, then trust it with: {trust}",
            f"unknown host key {fingerprint}",
        )

    async def _probe(self, conn: asyncssh.SSHClientConnection) -> None:
        """Learn the host's own name and the SSH user's home directory."""
        script = 'uname -n && printf "%s\\n" "$HOME"'
        result = await asyncio.wait_for(
            conn.run(shlex.join(["sh", "-c", script]), check=False), PROBE_COMMAND_TIMEOUT
        )
        lines = str(result.stdout or "").splitlines()
        if result.exit_status != 0 or len(lines) < 2 or not lines[1].startswith("/"):
            raise SshConnectError(
                f"{self.address} accepted the login but `uname -n` and $HOME failed there: "
                f"{str(result.stderr or '').strip() or 'no output'}",
                "host shell failed",
            )
        self._on_connected(lines[0].strip(), lines[1].strip())


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    return output


def _describe_os_error(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if isinstance(error, OSError) and error.errno and error.errno > 0:
        # asyncio puts "Connect call failed (address)" in strerror; the errno text is plainer.
        return os.strerror(error.errno)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, asyncssh.DisconnectError):
        return error.reason
    return str(error) or type(error).__name__


def _keyscan_type(algorithm: str) -> str:
    """Map an SSH key algorithm to the -t name that ssh-keyscan and host key files use."""
    if "ed25519" in algorithm:
        return "ed25519"
    if algorithm.startswith("ecdsa"):
        return "ecdsa"
    return "rsa"
