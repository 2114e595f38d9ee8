"""Install this version of Willow into a venv on the generator host.

`deploy` builds the project's wheel locally with `uv build --wheel`, exports the locked versions
of the core's dependencies from `uv.lock`, copies both over SFTP and installs them into the venv
`[gpu_host] venv` on the host, creating it with `[gpu_host] python` when it does not exist. Nothing
is installed outside that venv.

The host gets only the core's dependencies (`[project] dependencies`: psycopg, NumPy, Faker,
pydantic, platformdirs, rich), pinned to the lock with hashes, so a remote worker generates the
same rows as a local one. The control room's own packages (Textual, asyncssh, the graph drivers,
the embedded servers) are the `control` extra and stay off the host.

The host installs with `uv pip` when uv is on its PATH and with the venv's pip otherwise.
"""

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import willow_core
from willow_core.errors import HostError
from willow_core.hosts.ssh import CommandResult, RemotePaths, SshHost

log = logging.getLogger("willow.hosts.deploy")

MIN_PYTHON = (3, 11)
"""Oldest Python the wheel supports (`requires-python` in pyproject.toml)."""

BUILD_TIMEOUT = 600.0
"""Seconds that `uv build` or `uv export` may take locally."""

INSTALL_TIMEOUT = 1800.0
"""Seconds an install on the host may take; the first one downloads NumPy and friends."""

_VERSION_SNIPPET = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
_WILLOW_VERSION_SNIPPET = "from importlib.metadata import version; print(version('willow'))"


@dataclass(frozen=True)
class DeployResult:
    """The version, venv and Python that `deploy` installed, and the seconds each step took."""

    host: str
    venv: str
    version: str
    """The willow version installed in the venv, as the venv itself reports it."""
    python_version: str
    installer: str
    """"uv" or "pip", whichever installed on the host."""
    pinned: bool
    """Whether the dependencies were pinned to uv.lock (False when no lock was found)."""
    build_seconds: float
    upload_seconds: float
    install_seconds: float


def find_project_root() -> Path | None:
    """Return the source tree that willow_core was imported from, or None for an installed wheel."""
    candidate = Path(willow_core.__file__).resolve().parent.parent
    pyproject = candidate / "pyproject.toml"
    if pyproject.is_file() and 'name = "willow"' in pyproject.read_text(encoding="utf-8"):
        return candidate
    return None


def deploy(
    host: SshHost,
    *,
    wheel: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DeployResult:
    """Build (unless `wheel` is given), copy and install Willow into the host's venv.

    Args:
        host: the generator host.
        wheel: a wheel to install instead of building one from the source tree.
        progress: called with a short description as each step starts.

    Raises:
        HostError: the build failed, the host is unreachable, Python or the venv is missing or
            unusable there, or the install failed. The venv keeps its previous Willow then.
    """
    report = progress or (lambda step: None)
    root = find_project_root()
    if wheel is not None and not wheel.is_file():
        raise HostError(f"wheel {wheel} (from --wheel) not found; check the path")

    with tempfile.TemporaryDirectory(prefix="willow-deploy-") as scratch:
        started = time.perf_counter()
        if wheel is None:
            if root is None:
                raise HostError(
                    "cannot build a wheel: this Willow is not running from its source tree; "
                    "run willow deploy from a clone, or pass --wheel PATH"
                )
            report("building the wheel with uv build")
            wheel = build_wheel(root, Path(scratch))
        requirements = export_requirements(root, Path(scratch)) if root is not None else None
        build_seconds = time.perf_counter() - started

        report(f"connecting to {host.name}")
        paths = host.paths()
        report(f"checking Python and the venv {paths.venv} on {host.name}")
        python_version = ensure_venv(host, paths)

        started = time.perf_counter()
        report(f"copying {wheel.name} to {host.name}")
        remote_wheel = host.upload(wheel, paths.wheels)
        remote_requirements = (
            host.upload(requirements, paths.wheels) if requirements is not None else None
        )
        upload_seconds = time.perf_counter() - started

        started = time.perf_counter()
        installer = _find_uv(host)
        report(f"installing {wheel.name} into {paths.venv} with {installer or 'pip'}")
        _install(host, paths, installer, remote_wheel, remote_requirements, wheel.name)
        version = installed_version(host, paths)
        install_seconds = time.perf_counter() - started

    result = DeployResult(
        host=host.name,
        venv=paths.venv,
        version=version,
        python_version=python_version,
        installer="uv" if installer else "pip",
        pinned=remote_requirements is not None,
        build_seconds=build_seconds,
        upload_seconds=upload_seconds,
        install_seconds=install_seconds,
    )
    log.info(
        "deployed willow %s to %s on %s (build %.1f s, copy %.1f s, install %.1f s)",
        version,
        paths.venv,
        host.name,
        build_seconds,
        upload_seconds,
        install_seconds,
    )
    return result


def build_wheel(project_root: Path, out_dir: Path) -> Path:
    """Build the project's wheel into `out_dir` with `uv build --wheel`; return its path.

    Raises:
        HostError: uv is missing or the build failed.
    """
    result = _run_uv(
        ["build", "--wheel", "--out-dir", str(out_dir), str(project_root)],
        operation=f"building the wheel in {project_root}",
    )
    wheels = sorted(out_dir.glob("willow-*.whl"))
    if len(wheels) != 1:
        raise HostError(
            f"uv build in {project_root} produced {len(wheels)} willow wheels, expected 1: "
            f"{result.stderr.strip()[-300:]}"
        )
    return wheels[0]


def export_requirements(project_root: Path, out_dir: Path) -> Path | None:
    """Write the core's locked dependencies, with hashes, as requirements.txt; None without a lock.

    Raises:
        HostError: uv is missing or the export failed.
    """
    if not (project_root / "uv.lock").is_file():
        log.warning("no uv.lock in %s: the host gets unpinned dependencies", project_root)
        return None
    target = out_dir / "willow-host-requirements.txt"
    _run_uv(
        [
            "export",
            "--frozen",
            "--no-default-groups",
            "--no-emit-project",
            "--format",
            "requirements.txt",
            "--output-file",
            str(target),
            "--project",
            str(project_root),
        ],
        operation="exporting the locked dependencies",
    )
    return target


def _run_uv(arguments: list[str], *, operation: str) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv")
    if uv is None:
        raise HostError(
            f"{operation} needs uv, which is not on PATH; install uv or pass --wheel PATH"
        )
    try:
        result = subprocess.run(
            [uv, *arguments],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise HostError(f"{operation} did not finish within {BUILD_TIMEOUT:.0f} s") from error
    if result.returncode != 0:
        detail = CommandResult(result.returncode, result.stdout, result.stderr).error_line
        raise HostError(f"{operation} failed: {detail}")
    return result


def ensure_venv(host: SshHost, paths: RemotePaths) -> str:
    """Create the venv on the host unless it works already; return its Python version.

    Raises:
        HostError: the configured Python is missing or too old, or the venv cannot be created.
    """
    existing = host.run_command([paths.python, "-c", _VERSION_SNIPPET])
    if existing.exit_status == 0:
        version = existing.stdout.strip()
        _require_supported(version, f"the venv {paths.venv}", host.name)
        return version

    python = host.settings.python
    base = host.run_command([python, "-c", _VERSION_SNIPPET])
    if base.exit_status == 127:
        raise HostError(
            f"Python interpreter {python!r} not found on {host.name}; install Python "
            f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer there, or set [gpu_host] python to its path"
        )
    if base.exit_status != 0:
        raise HostError(f"Python interpreter {python!r} on {host.name} failed: {base.error_line}")
    version = base.stdout.strip()
    _require_supported(version, f"[gpu_host] python {python!r}", host.name)

    created = host.run_command([python, "-m", "venv", paths.venv], timeout=300)
    if created.exit_status != 0:
        raise HostError(
            f"could not create the venv {paths.venv} on {host.name} with {python}: "
            f"{created.error_line}; on Debian or Ubuntu install the python3-venv package"
        )
    log.info("created venv %s on %s with Python %s", paths.venv, host.name, version)
    return version


def _require_supported(version: str, interpreter: str, host: str) -> None:
    try:
        numbers = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        raise HostError(
            f"{interpreter} on {host} reported an unreadable version {version!r}"
        ) from None
    if numbers < MIN_PYTHON:
        raise HostError(
            f"{interpreter} on {host} is Python {version}; Willow needs "
            f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer: set [gpu_host] python to a newer one "
            "(and remove the old venv)"
        )


def _find_uv(host: SshHost) -> str | None:
    found = host.run_command(["sh", "-c", "command -v uv"])
    path = found.stdout.strip()
    return path if found.exit_status == 0 and path else None


def _install(
    host: SshHost,
    paths: RemotePaths,
    uv: str | None,
    wheel: str,
    requirements: str | None,
    wheel_name: str,
) -> None:
    if uv is not None:
        install = [uv, "pip", "install", "--python", paths.python]
        reinstall = [*install, "--no-deps", "--reinstall", wheel]
    else:
        # NOTE: the test suite's host has uv, so this pip path only runs on hosts without it.
        install = [
            paths.python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ]
        reinstall = [*install, "--no-deps", "--force-reinstall", wheel]

    # Dependencies first: a failure there leaves the venv's Willow as it was.
    if requirements is not None:
        dependencies = [*install, "--require-hashes", "--no-deps", "-r", requirements]
    else:
        dependencies = [*install, wheel]
    for step in (dependencies, reinstall):
        result = host.run_command(step, timeout=INSTALL_TIMEOUT)
        if result.exit_status != 0:
            raise HostError(
                f"installing {wheel_name} into {paths.venv} on {host.name} failed: "
                f"{result.error_line}; Willow in that venv is unchanged"
            )


def installed_version(host: SshHost, paths: RemotePaths) -> str:
    """Return the willow version installed in the host's venv.

    Raises:
        HostError: the venv has no working willow.
    """
    result = host.run_command([paths.python, "-c", _WILLOW_VERSION_SNIPPET])
    if result.exit_status != 0:
        raise HostError(
            f"willow is not installed in {paths.venv} on {host.name}: {result.error_line}"
        )
    return result.stdout.strip()
