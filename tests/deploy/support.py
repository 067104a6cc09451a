"""Helpers for the deployment tests: the shipped unit file read as systemd reads it, the
service started as systemd would start it, stopped as systemd stops it, and the README's
deployment commands run on a stand-in server under a temporary folder.

No systemd runs here as PID 1, so "as systemd would" means: ExecStart split into words, the
Environment= settings, then the EnvironmentFile over them, in WorkingDirectory, and KillSignal
to the main process. The parts only systemd itself can check (directives, sandboxing syntax)
are left to `systemd-analyze verify`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "govdash.service"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
TOOLS_MESSAGE = (
    "The deployment tests need Debian's {tool}: run `bash scripts/install-deploy-tools.sh` "
    "(make test does)."
)


def require_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(TOOLS_MESSAGE.format(tool=name), pytrace=False)
    return found


# --- the unit file ----------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Section → key → values in order (Environment= and others may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        heading = re.fullmatch(r"\[(\w+)\]", line)
        if heading:
            current = sections.setdefault(heading.group(1), {})
            continue
        assert current is not None, f"a setting outside any section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd reads them (comments and blank lines skipped)."""
    found: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        found[key.strip()] = value.strip()
    return found


@dataclass(frozen=True)
class ServiceStart:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    kill_signal: signal.Signals


def service_start(
    unit_text: str, relocate: dict[str, str], port: int, program: list[str] | None = None
) -> ServiceStart:
    """How systemd would start this unit, with its paths moved under a test folder
    (`relocate`: real path → stand-in) and on `port`; `program` replaces the ExecStart binary
    (e.g. the test's own interpreter running `-m govdash`)."""

    def moved(value: str) -> str:
        for real, stand_in in relocate.items():
            value = value.replace(real, stand_in)
        return value

    service = parse_unit(unit_text)["Service"]
    (exec_start,) = service["ExecStart"]
    argv = [moved(word) for word in shlex.split(exec_start)]
    if program is not None:
        argv = [*program, *argv[1:]]
    argv[argv.index("--port") + 1] = str(port)
    env = {
        name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ") if name in os.environ
    }
    for setting in service.get("Environment", []):
        for assignment in shlex.split(setting):
            key, _, value = assignment.partition("=")
            env[key] = moved(value)
    for setting in service.get("EnvironmentFile", []):
        env.update(read_environment_file(Path(moved(setting.lstrip("-")))))
    (working_directory,) = service["WorkingDirectory"]
    (kill_signal,) = service.get("KillSignal", ["SIGTERM"])
    return ServiceStart(argv, env, Path(moved(working_directory)), signal.Signals[kill_signal])


# --- running and stopping ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
            return bool(answer.read().strip() == b"ok")
    except OSError:
        return False


def wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(url):
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"the server was not healthy after {START_TIMEOUT_S:.0f} s:\n{tail(log)}")
        time.sleep(0.3)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def start(how: ServiceStart, log: Path) -> subprocess.Popen[bytes]:
    """The service's main process, in a process group of its own (its "cgroup")."""
    with log.open("ab") as output:
        return subprocess.Popen(
            how.argv,
            cwd=how.cwd,
            env=how.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def group_members(group: int) -> list[psutil.Process]:
    """Live processes of a process group (what a stop must leave empty)."""
    members = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == group and process.info["status"] != "zombie":
                members.append(process)
    return members


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> int:
    """`how` to the main process only (as `kill -TERM <pid>`), then its exit status."""
    process.send_signal(how)
    try:
        return process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill_group(process)
        pytest.fail(f"the server was still running {STOP_TIMEOUT_S:.0f} s after {how.name}")


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Clean-up after a failure: end whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def service(how: ServiceStart, url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The service running until the block ends (stopped with its KillSignal, exit 0)."""
    process = start(how, log)
    try:
        wait_healthy(process, url, log)
        yield process
    finally:
        if process.poll() is None:
            status = stop(process, how.kill_signal)
            assert status == 0, f"stopping the service is not a failure:\n{tail(log)}"
        kill_group(process)


def python_module_program() -> list[str]:
    return [sys.executable, "-m", "govdash"]
