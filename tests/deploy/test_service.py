"""deploy/govdash.service and `govdash serve` as a service (issue 18, item 2): the unit passes
`systemd-analyze verify` and asks for what a service needs; started as the unit says, the
server is the main process itself, and a stop (SIGTERM, or Ctrl-C's SIGINT) ends it with exit
status 0, the port free for the next start and nothing of it left running.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.deploy.support import (
    DEPLOY,
    UNIT,
    group_members,
    kill_group,
    parse_unit,
    python_module_program,
    require_tool,
    service_start,
    start,
    stop,
    tail,
    wait_healthy,
)

STATE = "/var/lib/govdash"


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    # A stand-in root: the program where the unit expects it, and systemd's own units (verify
    # loads the targets the unit is ordered against).
    root = tmp_path / "root"
    program = root / "opt" / "govdash" / "bin" / "govdash"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    for units in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if units.is_dir():
            shutil.copytree(units, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
            break
    installed = root / "etc" / "systemd" / "system" / "govdash.service"
    installed.parent.mkdir(parents=True)
    shutil.copyfile(UNIT, installed)
    verified = subprocess.run(
        [analyze, f"--root={root}", "verify", str(installed)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # verify exits 0 on unknown keys and bad values, but says so: any output is a finding.
    assert verified.returncode == 0 and verified.stdout + verified.stderr == "", (
        verified.stdout + verified.stderr
    )


def test_the_unit_asks_for_what_a_service_needs() -> None:
    unit = parse_unit(UNIT.read_text(encoding="utf-8"))
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["User"] == "govdash" and service["Group"] == "govdash"
    assert service["StateDirectory"] == "govdash" and service["StateDirectoryMode"] == "0700"
    assert service["WorkingDirectory"] == STATE
    assert service["EnvironmentFile"] == "/etc/govdash/govdash.env"  # not optional ("-")
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "true" and service["PrivateTmp"] == "true"
    assert service["Restart"] == "on-failure"
    # The SIGTERM to `govdash serve` alone (it stops its workers, then its nginx, in order).
    assert service["KillMode"] == "mixed" and service["KillSignal"] == "SIGTERM"
    assert service["UMask"] == "0077"
    environment = dict(v.split("=", 1) for v in unit["Service"]["Environment"])
    assert environment["GOVDASH_DB"] == f"{STATE}/warehouse.duckdb"
    assert environment["HOME"] == STATE  # ~/.streamlit/secrets.toml is in the state dir too
    # The program writes nowhere but the state directory: no ReadWritePaths beside it.
    assert "ReadWritePaths" not in service
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_environment_file_sets_nothing_by_default() -> None:
    """Shipped with every line commented out: nothing changes until the site edits it."""
    lines = (DEPLOY / "govdash.env").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == []


def _state(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The unit's paths under tmp_path, with the shipped environment file installed."""
    state = tmp_path / "var" / "lib" / "govdash"
    state.mkdir(parents=True, mode=0o700)
    etc = tmp_path / "etc" / "govdash"
    etc.mkdir(parents=True)
    shutil.copyfile(DEPLOY / "govdash.env", etc / "govdash.env")
    relocate = {STATE: str(state), "/etc/govdash": str(etc)}
    return relocate, state


def test_the_service_stops_cleanly_and_starts_again_on_the_same_port(tmp_path: Path) -> None:
    relocate, state = _state(tmp_path)
    port = _free_port()
    how = service_start(UNIT.read_text(encoding="utf-8"), relocate, port, python_module_program())
    assert how.kill_signal == signal.SIGTERM
    assert how.cwd == state and how.env["GOVDASH_DB"] == str(state / "warehouse.duckdb")
    url = f"http://127.0.0.1:{port}/dashboard"  # the unit serves under --base-path /dashboard
    log = tmp_path / "service.log"
    process = start(how, log)
    try:
        wait_healthy(process, url, log)
        # The server is the main process itself. The unit leaves the worker count at "auto":
        # one per core when nginx is installed, and those are its only children.
        assert _children(process.pid) == _expected_children(), tail(log)
        with connect(
            f"ws://127.0.0.1:{port}/dashboard/_stcore/stream", subprotocols=["streamlit"]
        ) as browser_tab:  # an open dashboard tab
            status = stop(process, signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                browser_tab.recv(timeout=10)
        assert status == 0, tail(log)
        # Told to reconnect later (1012 service restart), not dropped: with workers, through
        # nginx, which stops after them.
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
        assert group_members(process.pid) == [], "nothing of the service may keep running"
        assert _nobody_listens(port)
        # What `systemctl restart` does next: the same port, at once.
        again = start(how, log)
        try:
            wait_healthy(again, url, log)
            assert stop(again, signal.SIGINT) == 0, tail(log)  # Ctrl-C in a terminal
            assert group_members(again.pid) == [] and _nobody_listens(port)
        finally:
            kill_group(again)
    finally:
        kill_group(process)
    assert "Traceback" not in log.read_text(errors="replace"), tail(log)


def _children(pid: int) -> dict[str, int]:
    """The server's child processes by kind: nginx, or a `govdash serve` worker."""
    kinds: dict[str, int] = {}
    for child in psutil.Process(pid).children(recursive=True):
        command = child.cmdline()
        if child.name() == "nginx":  # it rewrites its command line ("nginx: master process")
            kind = "nginx"
        elif "serve" in command and "--workers" in command:
            kind = "worker " + command[command.index("--workers") + 1]
        else:
            kind = " ".join(command)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _expected_children() -> dict[str, int]:
    """What "auto" should start here, counted from the machine: nothing with one core or no
    nginx; otherwise one single-process worker per core (this machine's memory allows it)
    and nginx: its master and the one worker process its generated config asks for."""
    cores = len(os.sched_getaffinity(0))
    gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 30)
    has_nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is not None
    if cores == 1 or not has_nginx:
        return {}
    assert gib >= cores, "the test assumes a GiB of memory per core"
    return {"worker 1": cores, "nginx": 2}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _nobody_listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


# --- govdash-admin: commands by hand, as the service runs them --------------------------------


def _admin(tmp_path: Path, user: str, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    relocate, state = _state(tmp_path)
    (Path(relocate["/etc/govdash"]) / "govdash.env").write_text(
        "# site settings\nGOVDASH_CONFIG=/etc/govdash/config.toml\n", encoding="utf-8"
    )
    env = {
        "PATH": os.environ["PATH"],
        "GOVDASH_DB": "/somewhere/else.duckdb",  # the caller's own setting must not leak in
        "GOVDASH_SERVICE_USER": user,
        "GOVDASH_ENV_FILE": str(Path(relocate["/etc/govdash"]) / "govdash.env"),
        "GOVDASH_STATE_DIR": str(state),
        "GOVDASH_PROGRAM": program,
    }
    return subprocess.run(
        [str(DEPLOY / "govdash-admin"), *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_govdash_admin_gives_the_program_the_services_environment(tmp_path: Path) -> None:
    ran = _admin(tmp_path, getpass.getuser(), "/usr/bin/env")
    assert ran.returncode == 0, ran.stderr
    env = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    state = tmp_path / "var" / "lib" / "govdash"
    assert env["GOVDASH_DB"] == str(state / "warehouse.duckdb")
    assert env["HOME"] == str(state)
    assert env["GOVDASH_CONFIG"] == "/etc/govdash/config.toml"  # from the environment file


@pytest.mark.skipif(os.geteuid() != 0, reason="changing to the service user needs root (CI is)")
def test_govdash_admin_runs_the_program_as_the_service_user(tmp_path: Path) -> None:
    ran = _admin(tmp_path, "nobody", "/usr/bin/id")
    assert ran.returncode == 0, ran.stderr
    assert f"uid={psutil.Process().uids().real}" not in ran.stdout
    assert "(nobody)" in ran.stdout.split()[0]


def test_govdash_admin_refuses_without_the_environment_file(tmp_path: Path) -> None:
    _, state = _state(tmp_path)
    env = {
        "PATH": os.environ["PATH"],
        "GOVDASH_ENV_FILE": str(tmp_path / "missing.env"),
        "GOVDASH_STATE_DIR": str(state),
        "GOVDASH_PROGRAM": "/usr/bin/env",
    }
    ran = subprocess.run(
        [str(DEPLOY / "govdash-admin")], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 2 and "sudo" in ran.stderr and ran.stdout == ""
