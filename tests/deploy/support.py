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
import ssl
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
    """Streamlit's health route answers ok (over https: any certificate, it is self-signed)."""
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2, context=context) as answer:
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


# --- the README's deployment commands on a stand-in server ------------------------------------

README = ROOT / "README.md"
DEPLOYMENT_HEADING = "## 部署 · Deployment"
REHEARSED = re.compile(r"<!-- rehearsed: ([\w-]+) -->\n```bash\n(.*?)```", re.S)
# The real paths of a server and where they lie on the stand-in (under its root folder).
SERVER_PATHS = (
    "/opt/govdash",
    "/var/lib/govdash",
    "/etc/govdash",
    "/etc/systemd/system",
    "/etc/nginx",
    "/etc/ssl",
    "/usr/local/bin",
    "/srv/govdash-incoming",
)
# Recorded instead of run (no systemd as PID 1; Debian packages come from scripts/); `install`
# records its owner options (no user govdash here) and does the rest; `nginx` runs Debian's
# nginx on the stand-in's site, moved to loopback ports (see template_site).
SHIMS = r"""
set -euo pipefail
record() { printf '%s\n' "$*" >> "$REHEARSAL_LOG"; }
apt-get() { record apt-get "$@"; }
useradd() { record useradd "$@"; }
systemctl() { record systemctl "$@"; }
install() {
  local args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -o|-g) record install "$1" "$2"; shift 2 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  command install "${args[@]}"
}
nginx() {
  PYTHONPATH="$REHEARSAL_CHECKOUT" "$REHEARSAL_PYTHON" -m tests.deploy.support template-site
  command nginx -c "$NGINX_PREFIX/nginx.conf" -p "$NGINX_PREFIX/" -e "$NGINX_PREFIX/error.log" "$@"
}
"""


def deployment_section(text: str | None = None) -> str:
    text = README.read_text(encoding="utf-8") if text is None else text
    start = text.index(DEPLOYMENT_HEADING)
    end = text.index("\n## ", start + 1)
    return text[start:end]


def deployment_blocks() -> dict[str, str]:
    """The rehearsed ```bash blocks of the README's deployment section, in order."""
    return {name: body for name, body in REHEARSED.findall(deployment_section())}


def relocate_text(text: str, relocate: dict[str, str]) -> str:
    for real, stand_in in relocate.items():
        text = text.replace(real, stand_in)
    return text


def template_site(site: str, relocate: dict[str, str], ports: dict[str, int]) -> str:
    """The shipped nginx site on the stand-in: its paths moved, listening on loopback ports,
    forwarding to the port the service was started on."""
    site = relocate_text(site, relocate)
    site = re.sub(r"^\s*listen \[::\]:\d+.*\n", "", site, flags=re.M)
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{ports['https']} ssl;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{ports['http']};")
    return site.replace("server 127.0.0.1:8501;", f"server 127.0.0.1:{ports['app']};")


NGINX_MAIN = """daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/sites/*;
}}
"""


def _template_sites_from_environment() -> None:
    """`python -m tests.deploy.support template-site`, called by the nginx shim: every site
    enabled on the stand-in, templated into the test nginx's own folder."""
    relocate = dict(
        pair.split("=", 1) for pair in os.environ["REHEARSAL_RELOCATE"].split("\n") if pair
    )
    ports = {name: int(os.environ[f"REHEARSAL_{name.upper()}_PORT"]) for name in PORTS}
    prefix = Path(os.environ["NGINX_PREFIX"])
    sites = prefix / "sites"
    shutil.rmtree(sites, ignore_errors=True)
    sites.mkdir(parents=True)
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix), encoding="utf-8")
    enabled = Path(relocate["/etc/nginx"]) / "sites-enabled"
    for site in sorted(enabled.iterdir()):
        templated = template_site(site.read_text(encoding="utf-8"), relocate, ports)
        (sites / site.name).write_text(templated, encoding="utf-8")


PORTS = ("https", "http", "app")


@dataclass
class StandIn:
    """A server under `root`: the README's blocks run there, in `source` (the release)."""

    root: Path
    source: Path
    env: dict[str, str]
    relocate: dict[str, str]
    ports: dict[str, int]

    @classmethod
    def make(cls, root: Path, source: Path, constraints: Path, password: str) -> StandIn:
        relocate = {real: str(root / real.lstrip("/")) for real in SERVER_PATHS}
        for folder in ("/etc/nginx", "/etc/ssl", "/usr/local/bin", "/srv/govdash-incoming"):
            Path(relocate[folder]).mkdir(parents=True, exist_ok=True)
        for folder in ("sites-available", "sites-enabled"):  # as Debian's nginx package has
            (Path(relocate["/etc/nginx"]) / folder).mkdir()
        (Path(relocate["/etc/systemd/system"])).mkdir(parents=True)
        ports = {name: free_port() for name in PORTS}
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("GOVDASH_", "STREAMLIT_", "PIP_CONSTRAINT", "PYTHONPATH"))
        }
        env.update(
            {
                "PATH": os.pathsep.join(
                    [relocate["/usr/local/bin"], str(Path(sys.executable).parent), env["PATH"]]
                ),
                "REHEARSAL_CHECKOUT": str(ROOT),  # the nginx shim's helper, and only it
                "PIP_CONSTRAINT": str(constraints),
                "ADMIN_PASSWORD": password,
                "REHEARSAL_LOG": str(root / "recorded.log"),
                "REHEARSAL_PYTHON": sys.executable,
                "REHEARSAL_RELOCATE": "\n".join(f"{k}={v}" for k, v in relocate.items()),
                "NGINX_PREFIX": str(root / "nginx"),
                # govdash-admin: the service's paths on the stand-in, run as this user.
                "GOVDASH_SERVICE_USER": psutil.Process().username(),
                "GOVDASH_ENV_FILE": f"{relocate['/etc/govdash']}/govdash.env",
                "GOVDASH_STATE_DIR": relocate["/var/lib/govdash"],
                "GOVDASH_PROGRAM": f"{relocate['/opt/govdash']}/bin/govdash",
                **{f"REHEARSAL_{name.upper()}_PORT": str(port) for name, port in ports.items()},
            }
        )
        (root / "nginx").mkdir()
        return cls(root, source, env, relocate, ports)

    def path(self, real: str) -> Path:
        return Path(relocate_text(real, self.relocate))

    def run_block(self, name: str) -> subprocess.CompletedProcess[str]:
        """Run one README block (bash -e) in the release folder; fail with its output."""
        script = SHIMS + relocate_text(deployment_blocks()[name], self.relocate)
        with (self.root / "recorded.log").open("a", encoding="utf-8") as log:
            log.write(f"## {name}\n")
        ran = subprocess.run(
            ["bash", "-c", script],
            cwd=self.source, env=self.env, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if ran.returncode != 0:
            pytest.fail(
                f"README block {name!r} failed with {ran.returncode}:\n"
                f"{ran.stdout[-3000:]}\n{ran.stderr[-5000:]}"
            )
        return ran

    def recorded(self, name: str) -> list[str]:
        """What the block asked of apt-get, useradd, systemctl and install -o/-g."""
        lines = (self.root / "recorded.log").read_text(encoding="utf-8").splitlines()
        start = lines.index(f"## {name}") + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), None)
        return lines[start:end]

    def service(self) -> ServiceStart:
        """The installed unit, started as systemd would on the stand-in."""
        unit = self.path("/etc/systemd/system/govdash.service").read_text(encoding="utf-8")
        return service_start(unit, self.relocate, self.ports["app"])


if __name__ == "__main__":  # the nginx shim's helper
    assert sys.argv[1:] == ["template-site"], sys.argv
    _template_sites_from_environment()
