#!/usr/bin/env bash
# Debian's LibreOffice Writer without a GUI (soffice --headless): the bulletin tests open the
# generated .docx with it and convert it to PDF, as a street's own office suite would open it.
# Only the tests need it; the dashboard writes .docx and .pdf without it.
set -euo pipefail
if command -v soffice >/dev/null 2>&1 && dpkg -s libreoffice-writer-nogui >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libreoffice-writer-nogui >/dev/null
