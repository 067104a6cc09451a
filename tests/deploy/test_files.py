"""The shipped deployment files agree with the app and with the README: nginx lets through
the uploads the app accepts and is valid for Debian's nginx; every command of the README's
deployment section is one the rehearsal runs (tests/browser/test_deploy.py)."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

from govdash.core.config import Config
from tests.deploy.support import (
    DEPLOY,
    NGINX_MAIN,
    deployment_blocks,
    deployment_section,
    require_tool,
    template_site,
)

SITE = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
SIZE_UNITS = {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024}


def test_nginx_accepts_the_uploads_the_app_accepts(config: Config) -> None:
    """The shipped defaults: `govdash serve` gives Streamlit ceil(max_upload_mb) MB."""
    (size,) = re.findall(r"^\s*client_max_body_size\s+(\d+)([kKmMgG]?);", SITE, re.M)
    nginx_mb = int(size[0]) * SIZE_UNITS[size[1].lower()]
    assert nginx_mb >= math.ceil(config.max_upload_mb)


def test_nginx_keeps_what_streamlit_needs_behind_a_proxy() -> None:
    location = SITE[SITE.index("location /dashboard/") :]
    for directive in (
        "proxy_pass http://govdash;",  # no URI part: the path reaches the app unchanged
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_buffering off;",
    ):
        assert directive in location, directive
    (read_timeout,) = re.findall(r"proxy_read_timeout (\d+)([smhd]);", location)
    seconds = int(read_timeout[0]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[read_timeout[1]]
    assert seconds >= 3600, "nginx's 60 s default would cut an idle tab's websocket"


def test_the_shipped_site_is_valid_for_debians_nginx(tmp_path: Path) -> None:
    nginx = require_tool("nginx")
    openssl = require_tool("openssl")
    ssl = tmp_path / "etc" / "ssl"
    (ssl / "certs").mkdir(parents=True)
    (ssl / "private").mkdir()
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=gov.example", "-keyout", str(ssl / "private" / "gov.example.key"),
         "-out", str(ssl / "certs" / "gov.example.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    prefix = tmp_path / "nginx"
    (prefix / "sites").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix), encoding="utf-8")
    ports = {"https": 1443, "http": 1080, "app": 8501}
    (prefix / "sites" / "govdash").write_text(
        template_site(SITE, {"/etc/ssl": str(ssl)}, ports), encoding="utf-8"
    )
    tested = subprocess.run(
        [nginx, "-t", "-c", str(prefix / "nginx.conf"), "-p", f"{prefix}/",
         "-e", str(prefix / "error.log")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr


def test_every_command_of_the_deployment_section_is_rehearsed() -> None:
    section = deployment_section()
    fenced = re.findall(r"```bash\n", section)
    blocks = deployment_blocks()
    assert len(fenced) == len(blocks), "a ```bash block without <!-- rehearsed: NAME -->"
    assert list(blocks) == [
        "build",
        "install",
        "first-start",
        "oidc",
        "proxy",
        "upgrade",
        "rollback",
    ]
    assert "```" not in re.sub(r"```bash\n.*?```", "", section, flags=re.S), "other fences"
