"""Print an HTML document to PDF with Debian's headless Chromium (reports and bulletins)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from govdash.analytics.reports.export import DEFAULT_BROWSER_PATH
from govdash.i18n import t

PDF_TIMEOUT_SECONDS = 120.0
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
)


class PdfExportError(RuntimeError):
    """The PDF could not be printed; the message says what to do."""


def browser_path() -> str | None:
    """Debian's Chromium ($BROWSER_PATH, else /usr/bin/chromium, else `chromium` on PATH)."""
    for candidate in (os.environ.get("BROWSER_PATH"), DEFAULT_BROWSER_PATH):
        if candidate and os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


def pdf_export_available() -> bool:
    return browser_path() is not None


def html_to_pdf(document: str, lang: str = "zh", timeout: float = PDF_TIMEOUT_SECONDS) -> bytes:
    """Print an HTML document to PDF with headless Chromium in a private temporary folder.

    The CSS decides the page size and margins (@page). A browser that hangs is killed with its
    whole process group after `timeout` seconds.
    """
    browser = browser_path()
    if browser is None:
        raise PdfExportError(t("report.browser_missing", lang))
    with tempfile.TemporaryDirectory(prefix="govdash-report-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(document, encoding="utf-8")
        output = Path(folder) / "report.pdf"
        command = [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={Path(folder) / 'profile'}",
            f"--print-to-pdf={output}",
            page.as_uri(),
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a hang is killed whole
        )
        try:
            _, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise PdfExportError(t("report.pdf_timeout", lang, seconds=int(timeout))) from None
        data = output.read_bytes() if output.exists() else b""
        if not data.startswith(b"%PDF"):
            last = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or [
                f"exit {process.returncode}"
            ]
            raise PdfExportError(t("report.pdf_failed", lang, reason=last[0][:200]))
        return data


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
