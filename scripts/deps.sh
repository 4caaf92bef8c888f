#!/bin/sh
# make deps (run by make test): the Debian packages whose programs the tests run.
# Checks them with one dpkg-query (quick when nothing is missing); as root it
# installs what is missing with apt-get, otherwise it lists the missing
# packages and the command, and fails. CARPD_NO_DEPS=1 skips the check
# (a machine that is not Debian and has the tools some other way).
set -eu

# package             what runs it
PACKAGES="
ucarp                 e2e interop tests (a CARP peer)
keepalived            bench/failover (a VRRP peer)
tshark                e2e: decodes carpd's adverts
iproute2              lab: ip netns, veth, addresses; tc
iputils-ping          lab and e2e: ping
tcpdump               bench/failover captures
nftables              e2e and internal/ctsync/kernel: NAT and lossy-link rules (nft)
conntrack             e2e: conntrack -L/-C on the peers
python3               internal/ctsync/kernel: a web server in a namespace (python3 -m http.server)
curl                  internal/ctsync/kernel: its client
qemu-user-static      make cross, qemu-test, ipk-test: the mips/arm binaries
shellcheck            TestShellScripts
gcc                   go test -race (cgo)
libc6-dev             go test -race (cgo)
make                  the build; cmd/mkipk feed tests
git                   the version (package/version.sh), cmd/mkipk tests
ca-certificates       go's module downloads
chromium              internal/luciview: the LuCI views in headless Chromium
fonts-dejavu-core     a font for Chromium
libgl1-mesa-dri       Mesa for Chromium (installed without its recommends)
lua5.1                internal/metrics: the prometheus-node-exporter-lua collector (OpenWrt's Lua)
dnsmasq               e2e: service roles and lease sync (the DHCP server)
udhcpc                e2e lease sync: the DHCP clients (busybox udhcpc)
radvd                 e2e/ipv6_ra_test.go: router advertisements from the master only
"
names=$(printf '%s\n' "$PACKAGES" | awk 'NF { printf "%s ", $1 }')

if [ "${CARPD_NO_DEPS:-}" = 1 ]; then
	echo "make deps: skipped (CARPD_NO_DEPS=1)"
	exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "make deps: not a Debian system (no dpkg-query). The tests need these Debian packages or their" >&2
	echo "equivalents: $names" >&2
	echo "Install them, then run make test CARPD_NO_DEPS=1." >&2
	exit 1
fi

# Installed means status "ii"; an unknown package prints nothing here.
# shellcheck disable=SC2086 # one word per package
installed=$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' $names 2>/dev/null | awk '$1 == "ii" { print $2 }') || true
missing=""
for p in $names; do
	printf '%s\n' "$installed" | grep -qx "$p" || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "make deps: the tests need Debian packages that are not installed:$missing" >&2
	echo "Install them as root:  $cmd" >&2
	echo "(or run make test as root: sudo make test, or make test in a root shell)" >&2
	exit 1
fi
echo "make deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one word per package
apt-get install -y --no-install-recommends $missing

# shellcheck disable=SC2086
installed=$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' $names 2>/dev/null | awk '$1 == "ii" { print $2 }') || true
for p in $missing; do
	printf '%s\n' "$installed" | grep -qx "$p" || { echo "make deps: $p is still not installed after apt-get install" >&2; exit 1; }
done
