#!/usr/bin/env bash
# Installs the system programs the test suite drives (real mail clients, a browser) when they are missing.
# Debian packages are installed as root; elsewhere the script says what is missing and the tests that need
# a missing program fail with a clear message.
set -euo pipefail

# swaks needs Net::SSLeay for TLS; iproute2 and socat make the multi-host test's network (tests/e2e/test_multihost.py)
packages=(chromium isync getmail6 swaks libnet-ssleay-perl rspamd pebble haproxy dovecot-imapd iproute2 socat)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing test programs: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "missing test programs (install them with apt-get): ${missing[*]}" >&2
fi
