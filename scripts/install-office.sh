#!/usr/bin/env bash
# Debian's LibreOffice without a GUI (soffice --headless), for the tests only: Calc re-saves
# workbooks the way a LibreOffice or WPS user would (.xlsx → .ods/.xlsx/.xls/CSV) for the loader
# to read back; Writer opens the generated bulletin (.docx) and converts it to PDF, as a
# street's own office suite would. The dashboard itself writes .docx and .pdf without it.
set -euo pipefail
if command -v soffice >/dev/null 2>&1 && dpkg -s libreoffice-calc-nogui >/dev/null 2>&1 \
  && dpkg -s libreoffice-writer-nogui >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  libreoffice-calc-nogui libreoffice-writer-nogui >/dev/null
