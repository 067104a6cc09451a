#!/usr/bin/env bash
# Debian's chromium and CJK fonts for the browser tests, image and PDF export (never a downloaded
# build); poppler-utils (pdftotext, pdfinfo) for the tests that read the PDF report back.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 \
  && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-cjk poppler-utils >/dev/null
