"""`govdash serve --workers auto`, the shipped default (issue 19, item 4): one worker per core
the process may use, lowered by a container's CPU quota and memory limit, 1 with a notice when
nginx is missing; "auto" in the config file, and a clear refusal of anything else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from govdash.core.config import ConfigError, load_config
from govdash.web.workers import (
    NGINX_ENV,
    _free_ports,
    auto_workers,
    usable_cores,
    usable_memory,
)

ROOT = Path(__file__).resolve().parents[1]
GIB = 1 << 30
CORES = len(os.sched_getaffinity(0))
MEMORY = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _cgroup(tmp_path: Path, cpu: str | None = None, memory: str | None = None) -> Path:
    folder = tmp_path / f"cgroup-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    if cpu is not None:
        (folder / "cpu.max").write_text(cpu + "\n")
    if memory is not None:
        (folder / "memory.max").write_text(memory + "\n")
    return folder


def test_without_limits_every_core_and_the_machines_memory(tmp_path: Path) -> None:
    assert usable_cores(_cgroup(tmp_path)) == CORES
    assert usable_memory(_cgroup(tmp_path, memory="max")) == MEMORY


@pytest.mark.parametrize(
    ("quota", "expected"),
    [("max 100000", CORES), ("100000 100000", 1), ("150000 100000", 1), ("50000 100000", 1)],
)
def test_a_containers_cpu_quota_lowers_the_cores(tmp_path: Path, quota: str, expected: int) -> None:
    assert usable_cores(_cgroup(tmp_path, cpu=quota)) == min(CORES, expected)


def test_a_containers_memory_limit_lowers_the_memory(tmp_path: Path) -> None:
    assert usable_memory(_cgroup(tmp_path, memory=str(3 * GIB))) == min(MEMORY, 3 * GIB)


@pytest.mark.skipif(CORES < 2, reason="needs two usable cores")
def test_auto_is_one_worker_per_core_behind_nginx(tmp_path: Path) -> None:
    if not any(Path(d, "nginx").exists() for d in ("/usr/sbin", "/usr/local/sbin")):
        pytest.skip("nginx is not installed (scripts/install-deploy-tools.sh installs it)")
    count, how = auto_workers(_cgroup(tmp_path))
    assert count == min(CORES, MEMORY // GIB, 64)
    assert f"{count} 个工作进程" in how


@pytest.mark.skipif(CORES < 2, reason="needs two usable cores")
def test_auto_leaves_a_gib_per_worker(tmp_path: Path) -> None:
    count, _ = auto_workers(_cgroup(tmp_path, memory=str(GIB + GIB // 2)))
    assert count == 1  # 1.5 GiB: one worker, however many cores


@pytest.mark.skipif(CORES < 2, reason="needs two usable cores")
def test_auto_without_nginx_is_one_worker_and_says_how_to_get_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NGINX_ENV, str(tmp_path / "no-nginx-here"))
    count, how = auto_workers(_cgroup(tmp_path))
    assert count == 1
    assert "未安装 nginx" in how and "apt-get install -y nginx" in how
    assert f"{min(CORES, MEMORY // GIB, 64)} 个" in how


def test_the_config_takes_auto_a_number_or_nothing_else(tmp_path: Path) -> None:
    assert load_config().workers is None  # shipped: "auto"
    for value, expected in (('"auto"', None), ("3", 3)):
        path = tmp_path / f"w{expected}.toml"
        path.write_text(f"[server]\nworkers = {value}\n", encoding="utf-8")
        assert load_config(path).workers == expected
    for bad in ('"all"', "0", "65", "true"):
        path = tmp_path / "bad.toml"
        path.write_text(f"[server]\nworkers = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"server\.workers"):
            load_config(path)


def test_the_command_refuses_a_worker_count_that_is_not_a_number(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "govdash", "serve", "--db", str(tmp_path / "w.duckdb"),
         "--workers", "many"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 2
    assert "--workers" in ran.stderr and "auto" in ran.stderr and "'many'" in ran.stderr


def test_the_workers_ports_are_distinct_and_not_nginxs(tmp_path: Path) -> None:
    """CI once drew one port twice for two workers (each probe released before the next) and
    nginx refused its config. 300 probes drawn the old way repeated a port in 50 of 50 tries
    on this machine; drawn together they never do."""
    taken = _free_ports(1, taken=0)[0]
    ports = _free_ports(300, taken=taken)
    assert len(ports) == 300
    assert len(set(ports)) == 300
    assert taken not in ports
    assert all(1024 <= number <= 65535 for number in ports)
