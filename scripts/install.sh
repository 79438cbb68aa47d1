#!/usr/bin/env bash
# Install warpagent on a Debian machine: nmap from apt, the package into ./.venv.
#   scripts/install.sh          what running warpagent needs
#   scripts/install.sh --test   also the services the test estate runs and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# distro-info-data and debian-security-support: OS and package end-of-life data that
# 'feeds update --from' can import offline (the tests use them as real data);
# restic: warpagent's own restore test of configured restic repositories
packages=(nmap python3 python3-venv python3-pip ca-certificates distro-info-data debian-security-support restic)
if [ "$with_test" = 1 ]; then
  # the test estate: real Debian services in network namespaces
  packages+=(iproute2 procps nginx-light vsftpd openbsd-inetd inetutils-telnetd snmpd
             redis-server memcached openssh-server openssh-client
             chromium fonts-liberation)  # headless Chromium renders the board report in the tests
  # a real PostgreSQL for the store and the hub; a real Redis for the distributed scan executor
  packages+=(postgresql)
  # a real Active Directory domain controller (Samba) for the directory checks, provisioned by the
  # tests; ldapsearch is the directory benchmark's reference reader
  packages+=(samba-ad-dc samba-ad-provision ldap-utils)
  # a real DNS server serving the mail domains' records
  packages+=(dnsmasq-base)
  # .ci/run repeats the suite under a shifted clock: no test may depend on the date it runs on
  packages+=(faketime)
  # the oracles the parser differential tests compare warpagent with: sudo's cvtsudoers (dpkg,
  # apt and sshd -T are already on the machine)
  packages+=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  # The test services must not start as system daemons on the machine itself: the tests
  # start their own copies inside namespaces. policy-rc.d stops apt from starting them.
  guard=""
  if [ "$with_test" = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -n "$guard" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q .
fi
# The release and support-end data Debian just installed, imported into the default config's intel
# (./intel): with the KEV and endoflife.date snapshot warpagent ships, the first scan measures
# unsupported software with no internet. 'feeds update' later replaces all of it with current data.
echo "importing this machine's distro-info-data and debian-security-support (the default config's feeds.dir):"
.venv/bin/warpagent feeds update --from /usr/share/distro-info --from /usr/share/debian-security-support \
  | sed 's/^/  /' || echo "  (not imported: run the command above by hand to see why)"
echo "warpagent installed in .venv: run .venv/bin/warpagent --help"
