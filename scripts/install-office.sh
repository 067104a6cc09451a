#!/usr/bin/env bash
# Debian's LibreOffice Calc without a GUI, for the tests that re-save workbooks the way a
# LibreOffice or WPS user would (.xlsx → .ods/.xlsx/.xls/CSV) and load the results.
set -euo pipefail
if command -v soffice >/dev/null 2>&1 || command -v libreoffice >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  libreoffice-calc-nogui >/dev/null
