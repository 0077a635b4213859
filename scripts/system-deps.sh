#!/usr/bin/env bash
# Installs the Debian packages the test suite drives as real peers, when missing.
#   bash scripts/system-deps.sh            the packages the tests need (the list below)
#   bash scripts/system-deps.sh PKG...     those packages instead
# A no-op when everything is installed; `apt-get update` runs once, only before an install.
# Runs as root (CI) or through sudo when available.
set -euo pipefail

# Dovecot's IMAP server: tests/integration/imap starts its own instance (own config, port).
# Chromium: tests/browser drive it through Playwright (executable_path=/usr/bin/chromium).
DEFAULT_PACKAGES=(dovecot-imapd chromium)

if [ $# -gt 0 ]; then
  wanted=("$@")
else
  wanted=("${DEFAULT_PACKAGES[@]}")
fi

needed=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || needed+=("$pkg")
done
[ ${#needed[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "system-deps: need root (or sudo) to install: ${needed[*]}" >&2
    exit 1
  fi
fi

echo "installing Debian packages: ${needed[*]}"
# Packages such as dovecot-core start their system service on install (ports 143/993).
# The tests never use it, so forbid service starts during this install (the usual
# policy-rc.d mechanism), unless the machine already has its own policy.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  added_policy=1
fi
cleanup() {
  if [ "$added_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${needed[@]}"

# Under systemd, also keep the freshly installed system Dovecot from starting at boot.
if [ -d /run/systemd/system ] && printf '%s\n' "${needed[@]}" | grep -q '^dovecot'; then
  "${as_root[@]}" systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi
