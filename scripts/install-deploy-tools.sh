#!/usr/bin/env bash
# What the deployment tests need from Debian: nginx (the reverse proxy in front of the app, over
# TLS), openssl (a self-signed certificate for it) and systemd-analyze (to verify the unit file;
# package systemd, installed but not started: nothing here runs as PID 1).
set -euo pipefail
if command -v nginx >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 \
  && command -v systemd-analyze >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
# RUNLEVEL=1: the packages' maintainer scripts start no daemon (nginx would take port 80).
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
  nginx openssl systemd >/dev/null
