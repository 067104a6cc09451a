"""`govdash serve --workers N`: N server processes behind one address, served by nginx.

One Streamlit server process works on one core (Python's global lock). With N > 1 the command
starts N workers — each `govdash serve --workers 1` on its own loopback port, the server in its
own process as always — and, once they answer, Debian's nginx on the address users open, with a
config generated into the data folder's `run/` directory. The parent supervises: a worker that
dies is started again on the same port (its users' tabs wait, "connecting", and reconnect to a
new session on it, which reruns the page from its address and sign-in cookie; nginx does not
fail them over to a worker that lacks their downloads); if nginx dies, everything stops with
status 1; SIGTERM or SIGINT stops every worker, then nginx, then exits 0.

Sticky sessions. Streamlit serves download and media URLs from the memory of the process that
made them, and a websocket reconnect must reach the same process. Open-source nginx has no
`sticky cookie`, so the generated config makes its own: a request without a cookie naming a
worker goes to the worker with the fewest open connections (`least_conn`; open tabs hold a
websocket each), and the answer sets `govdash_route=<worker>.<request id>` (Path = the base
path, HttpOnly, SameSite=Lax, Secure when the browser's scheme is https); a request with it
goes to that worker's own upstream. The browser's page load, websocket and downloads then all
reach one worker, and browsers that arrive together are spread evenly (a hash of a random
cookie split 20 users 13/7 about as often as 10/10, and the busier worker set the p90). Sign-in sessions are
valid on every worker already: one sessions.sqlite3 (WAL) and one signing key beside the
accounts.

Trusted proxies. The workers see every request from nginx on 127.0.0.1 and trust it; nginx
passes X-Forwarded-For/-Proto on only from the addresses in --forwarded-allow-ips
(`server.forwarded_allow_ips`), so what the setting means does not change with workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NGINX_ENV = "GOVDASH_NGINX"  # path of the nginx binary, if not on PATH or in /usr/sbin
WORKER_ENV = "GOVDASH_WORKER"  # set in each worker's environment: its number, 1…N
ROUTE_COOKIE = "govdash_route"
WORKER_HEADER = "X-Govdash-Worker"
POLL_S = 0.3
STOP_TIMEOUT_S = 20.0
START_TIMEOUT_S = 300.0  # nginx opens the address at the latest this long after the start
# A worker that ran less than this before dying is restarted after a growing pause (1, 2, 4 …
# 30 s), so a worker that cannot start does not spin.
QUICK_DEATH_S = 10.0


WORKER_MEMORY_BYTES = 1 << 30  # what "auto" leaves per worker: ~0.5 GB measured, plus loads
CGROUP = Path("/sys/fs/cgroup")  # a container's CPU and memory limits (cgroup v2)


class WorkersError(RuntimeError):
    """Something the clerk or the IT department can fix (message in Chinese and English)."""


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may run on: its CPU affinity, lowered by a container's CPU quota
    (cgroup v2 cpu.max "200000 100000" = 2 cores)."""
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = (cgroup / "cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    return cores


def usable_memory(cgroup: Path = CGROUP) -> int:
    """Bytes of memory: the machine's, lowered by a container's limit (cgroup v2 memory.max)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(OSError, ValueError):
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            memory = min(memory, int(limit))
    return memory


def auto_workers(cgroup: Path = CGROUP) -> tuple[int, str]:
    """`--workers auto`: one per usable core, at most one per GiB of memory and 64; 1 when nginx
    is missing. Returns the count and a line saying how it was chosen (for the start message)."""
    cores = usable_cores(cgroup)
    wanted = max(1, min(cores, usable_memory(cgroup) // WORKER_MEMORY_BYTES, 64))
    if wanted == 1:
        return 1, f"1 个工作进程（本机可用 {cores} 个 CPU 核） / 1 worker ({cores} usable cores)"
    try:
        find_nginx()
    except WorkersError:
        return 1, (
            f"未安装 nginx，只启动 1 个工作进程，只用本机 {cores} 个 CPU 核中的一个。"
            f"apt-get install -y nginx 后，govdash serve 会自动启动 {wanted} 个。"
            f" / nginx is not installed: 1 worker on 1 of {cores} cores; with nginx installed, "
            f"govdash serve starts {wanted}."
        )
    return wanted, (
        f"{wanted} 个工作进程（本机可用 {cores} 个 CPU 核，--workers auto） "
        f"/ {wanted} workers ({cores} usable cores, --workers auto)"
    )


def find_nginx() -> Path:
    """Debian's nginx: $GOVDASH_NGINX, else `nginx` on PATH, in /usr/sbin or /usr/local/sbin."""
    chosen = os.environ.get(NGINX_ENV)
    if chosen:
        path = Path(chosen)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise WorkersError(
            f"找不到 nginx：${NGINX_ENV}={chosen} 不是可执行文件。多个工作进程（--workers 大于 1）"
            f"需要 nginx：apt-get install -y nginx，或改用 --workers 1。 / nginx not found at "
            f"${NGINX_ENV}={chosen}; several workers need nginx (apt-get install -y nginx)."
        )
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = shutil.which("nginx", path=search)
    if found is None:
        raise WorkersError(
            "未安装 nginx。多个工作进程（--workers 大于 1）由 nginx 在一个地址上分发："
            "请运行 apt-get install -y nginx，或改用 --workers 1。 / nginx is not installed; "
            "several workers are served through nginx: apt-get install -y nginx, or use "
            "--workers 1."
        )
    return Path(found)


def _free_ports(count: int, taken: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports, none equal to `taken` (nginx's own).

    The probes stay bound until all are chosen: a port probed and released at once can be
    handed out again by the very next probe, and two workers on one port make nginx refuse
    its config ("conflicting parameter")."""
    with contextlib.ExitStack() as probes:
        ports: list[int] = []
        while len(ports) < count:
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            chosen = int(probe.getsockname()[1])
            if chosen != taken:
                ports.append(chosen)
        return ports


def trusted_proxy_lines(forwarded_allow_ips: str) -> list[str]:
    """`geo` lines for nginx from the trusted proxy addresses ("*" trusts every address)."""
    lines: list[str] = []
    for item in (part.strip() for part in forwarded_allow_ips.split(",")):
        if not item:
            continue
        if item == "*":
            lines.append("    default 1;")
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError as error:
            raise WorkersError(
                f"信任的代理地址无法识别：{item!r}（--forwarded-allow-ips / server.forwarded_allow_ips"
                f"，多个工作进程时须为 IP 地址或网段，逗号分隔）。 / not an IP address or network: "
                f"{item!r}"
            ) from error
        lines.append(f"    {network.with_prefixlen} 1;")
    return lines


def nginx_config(
    *,
    run_dir: Path,
    host: str,
    port: int,
    base_path: str,
    worker_ports: Sequence[int],
    forwarded_allow_ips: str,
    max_body_mb: int,
) -> str:
    """The nginx config that serves the workers on host:port (base_path "" or "dashboard")."""
    prefix = f"/{base_path.strip('/')}" if base_path.strip("/") else ""
    cookie_path = prefix or "/"
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if host in ("", "0.0.0.0"):
        listen = str(port)
    user = ""
    if os.geteuid() == 0:  # nginx's workers would otherwise switch to `nobody`
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    servers = "\n".join(
        f"        server 127.0.0.1:{worker_port} max_fails=0;" for worker_port in worker_ports
    )
    numbers = "\n".join(
        f"        127.0.0.1:{worker_port} {index};"
        for index, worker_port in enumerate(worker_ports, start=1)
    )
    pools = "\n".join(
        f'        "~^{index}\\." govdash_worker_{index};'
        for index in range(1, len(worker_ports) + 1)
    )
    kept = "\n".join(
        f'        "~^{index}\\." $cookie_{ROUTE_COOKIE};'
        for index in range(1, len(worker_ports) + 1)
    )
    single = "\n".join(
        f"    upstream govdash_worker_{index} {{\n"
        f"        server 127.0.0.1:{worker_port} max_fails=0;\n        keepalive 8;\n    }}"
        for index, worker_port in enumerate(worker_ports, start=1)
    )
    lines = trusted_proxy_lines(forwarded_allow_ips)
    if "    default 1;" not in lines:
        lines.insert(0, "    default 0;")
    trusted = "\n".join(f"    {line}" for line in lines)
    temp = "\n".join(
        f"    {name}_temp_path {run_dir / 'nginx-temp' / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Generated by `govdash serve --workers {len(worker_ports)}`; rewritten at every start.
{user}worker_processes 1;
daemon off;
pid {run_dir / "nginx.pid"};
error_log {run_dir / "nginx-error.log"} warn;

events {{
    worker_connections 4096;
}}

http {{
{temp}
    # Which worker served what (no client addresses); the app's static files are left out.
    map $uri $govdash_logged {{
        ~/static/ 0;
        default 1;
    }}
    log_format govdash '$time_iso8601 worker=$govdash_worker '
                       'route=$govdash_route "$request" $status $body_bytes_sent';
    access_log {run_dir / "nginx-access.log"} govdash if=$govdash_logged;

    # Proxies whose X-Forwarded-For/-Proto are passed on (--forwarded-allow-ips).
    geo $govdash_trusted {{
{trusted}
    }}
    map "$govdash_trusted:$http_x_forwarded_proto" $govdash_proto {{
        "~^1:(?<forwarded>https?)$" $forwarded;
        default $scheme;
    }}
    map $govdash_trusted $govdash_forwarded_for {{
        1 $proxy_add_x_forwarded_for;
        default $remote_addr;
    }}
    map $govdash_proto $govdash_secure {{
        https "; Secure";
        default "";
    }}

    # Sticky sessions. A browser without a route cookie goes to the worker with the fewest
    # open connections (its tabs' websockets count), and the answer gives it a cookie naming
    # that worker ("2.<request id>"); from then on all its requests go to that worker. So
    # browsers arriving together are spread evenly, not by chance. A cookie naming no
    # worker of this start is treated as none.
    map $cookie_{ROUTE_COOKIE} $govdash_pool {{
{pools}
        default govdash_workers;
    }}
    map $govdash_pool $govdash_new_route {{
        govdash_workers 1;
        default 0;
    }}
    map $cookie_{ROUTE_COOKIE} $govdash_route {{
{kept}
        default $govdash_worker.$request_id;
    }}
    map "$govdash_new_route:$govdash_worker" $govdash_set_route {{
        "~^1:(?<number>[0-9]+)$" "{ROUTE_COOKIE}=$number.$request_id; Path={cookie_path}; HttpOnly; SameSite=Lax$govdash_secure";
        default "";
    }}
    map $http_upgrade $govdash_connection {{
        default upgrade;
        "" "";
    }}
    map $upstream_addr $govdash_worker {{
        default "";
{numbers}
    }}

    upstream govdash_workers {{
        least_conn;
{servers}
        keepalive 16;
    }}
{single}

    server {{
        listen {listen};
        client_max_body_size {max_body_mb}m;

        location / {{
            proxy_pass http://$govdash_pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $govdash_connection;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $govdash_forwarded_for;
            proxy_set_header X-Forwarded-Proto $govdash_proto;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_connect_timeout 10s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            # No failing over to another worker: a tab's websocket, downloads and uploads
            # must stay on one process. While its worker restarts, a tab shows Streamlit's
            # "connecting" and retries; it then gets a new session on the restarted worker.
            proxy_next_upstream off;
            add_header Set-Cookie $govdash_set_route always;
            add_header {WORKER_HEADER} $govdash_worker always;
        }}
    }}
}}
"""


def _die_with_parent() -> None:
    """In the child before exec: end when the parent ends, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Child:
    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env, preexec_fn=_die_with_parent)
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.read().strip() == b"ok")
    except OSError:
        return False


def _say(message: str) -> None:
    print(f"govdash serve: {message}", file=sys.stderr, flush=True)


class _Stop(Exception):
    pass


def run_workers(
    *,
    workers: int,
    host: str,
    port: int,
    base_path: str,
    forwarded_allow_ips: str,
    max_body_mb: int,
    run_dir: Path,
    worker_args: Sequence[str],
) -> int:
    """Run `workers` servers and nginx until SIGTERM/SIGINT; returns the exit status.

    `worker_args` are the `govdash serve` arguments every worker gets (--db, --config,
    --base-path); each worker adds its port, --host 127.0.0.1, --workers 1 and
    --forwarded-allow-ips 127.0.0.1 (nginx is its only client)."""
    nginx = find_nginx()
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "nginx-temp" / name).mkdir(parents=True, exist_ok=True, mode=0o700)
    ports = _free_ports(workers, taken=port)
    for log in ("nginx-access.log", "nginx-error.log"):  # this start's and the one before
        if (run_dir / log).exists():
            os.replace(run_dir / log, run_dir / f"{log}.1")
    config = run_dir / "nginx.conf"
    config.write_text(
        nginx_config(
            run_dir=run_dir,
            host=host,
            port=port,
            base_path=base_path,
            worker_ports=ports,
            forwarded_allow_ips=forwarded_allow_ips,
            max_body_mb=max_body_mb,
        ),
        encoding="utf-8",
    )
    nginx_command = [
        str(nginx),
        "-c",
        str(config),
        "-p",
        f"{run_dir}/",
        "-e",
        str(run_dir / "nginx-error.log"),
    ]
    checked = subprocess.run([*nginx_command, "-t", "-q"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise WorkersError(
            f"nginx 配置检查失败 / nginx rejected the generated config {config}:\n{checked.stderr}"
        )

    def on_signal(signum: int, frame: object) -> None:
        raise _Stop

    # One cookie secret for every worker, so what Streamlit signs with it (its XSRF cookie, an
    # OIDC sign-in cookie) is valid on each of them and on a restarted one.
    shared = {**os.environ, "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_urlsafe(32)}
    children: list[_Child] = []
    for index, worker_port in enumerate(ports, start=1):
        env = {**shared, WORKER_ENV: str(index)}
        command = [
            sys.executable, "-m", "govdash", "serve", *worker_args,
            "--workers", "1", "--host", "127.0.0.1", "--port", str(worker_port),
            "--forwarded-allow-ips", "127.0.0.1",
        ]  # fmt: skip
        children.append(_Child(f"worker {index} (127.0.0.1:{worker_port})", command, env))
    front = _Child(f"nginx ({host}:{port})", nginx_command, dict(os.environ))

    previous = {stop: signal.signal(stop, on_signal) for stop in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        for child in children:
            child.start()
        # The address opens once every worker answers (or has died: the loop restarts it).
        base = base_path.strip("/")
        health = [f"http://127.0.0.1:{p}/{base + '/' if base else ''}_stcore/health" for p in ports]
        waiting = list(zip(children, health, strict=True))
        give_up = time.monotonic() + START_TIMEOUT_S
        while waiting and time.monotonic() < give_up:
            waiting = [(c, url) for c, url in waiting if c.alive() and not _healthy(url)]
            if waiting:
                time.sleep(POLL_S)
        front.start()
        _say(f"{workers} 个工作进程，地址 http://{host}:{port}/{base_path.strip('/')} "
             f"/ {workers} workers behind nginx; its config and logs in {run_dir}")  # fmt: skip
        while True:
            time.sleep(POLL_S)
            if not front.alive():
                code = front.process.returncode if front.process is not None else -1
                _say(f"nginx 已退出（状态 {code}），停止全部工作进程；见 {run_dir / 'nginx-error.log'} "
                     f"/ nginx exited with {code}: stopping")  # fmt: skip
                status = 1
                break
            now = time.monotonic()
            for child in children:
                if child.alive():
                    continue
                if child.restart_at == 0.0:
                    code = child.process.returncode if child.process is not None else -1
                    lived = now - child.started
                    child.quick_deaths = child.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
                    pause = (
                        min(30.0, 2.0 ** (child.quick_deaths - 1)) if child.quick_deaths else 0.0
                    )
                    child.restart_at = now + pause
                    _say(f"{child.name} 已退出（状态 {code}），{pause:.0f} 秒后重启 "
                         f"/ exited with {code}, restarting")  # fmt: skip
                if now >= child.restart_at:
                    child.restart_at = 0.0
                    child.start()
    except _Stop:
        pass
    finally:
        # Ignore further signals while stopping: a second SIGTERM must not leave orphans.
        for stop in previous:
            signal.signal(stop, signal.SIG_IGN)
        # Workers first: each tells its open tabs to reconnect later (websocket close 1012)
        # through nginx, which is stopped once they are gone.
        _stop_all(children)
        _stop_all([front], timeout_s=5.0)  # within the unit's TimeoutStopSec=30 with the 20 s
    return status


def _stop_all(children: Sequence[_Child], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM every child (nginx: fast shutdown; workers: uvicorn's graceful stop), wait,
    then SIGKILL what is left."""
    running = [c.process for c in children if c.process is not None and c.process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=10)
