# carpd — see README.md. Targets that touch namespaces need root.

# Go: from PATH, else where go.dev/doc/install puts it. `sudo make ...` runs with Debian
# sudo's secure_path, which drops /usr/local/go/bin; so its directory is added to PATH for
# every recipe too (last, so nothing else on PATH changes), and what the recipes run (sub-
# makes, `go run` programs, tests that exec go) finds the same Go.
ifeq ($(origin GO),undefined)
GO := $(shell command -v go 2>/dev/null || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || echo go)
endif
ifneq ($(findstring /,$(GO)),)
export PATH := $(PATH):$(patsubst %/,%,$(dir $(GO)))
endif
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -buildvcs=false
# carpd's binary: the cold packages without inlining (package/noinline.mk, docs/size-budget.md).
include package/noinline.mk
CARPD_BUILDFLAGS := $(GOFLAGS_BUILD) $(CARPD_NOINLINE_GCFLAGS)
BIN      := bin/carpd
FUZZTIME ?= 10s
FUZZMINIMIZE ?= 10000x
export CGO_ENABLED := 0

# OpenWrt targets: name GOOS/GOARCH extra-env
CROSS := mips_24kc:mips:GOMIPS=softfloat \
         mipsel_24kc:mipsle:GOMIPS=softfloat \
         arm_cortex-a7_neon-vfpv4:arm:GOARM=7 \
         aarch64_cortex-a53:arm64: \
         x86_64:amd64:

.PHONY: all build demo test deps unit e2e lint cross size-check qemu-test fuzz fuzz-smoke bench bench-failover bench-sync bench-track bench-follow bench-cfgsync clean

all: build

build:
	$(GO) build $(CARPD_BUILDFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) .

## demo: two routers in network namespaces, a client pinging the VIP, crash, takeover, preempt.
demo: build
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces): sudo make demo"; exit 1; }
	$(GO) run ./internal/lab/demo -carpd $(BIN)

## test: everything CI runs. Namespace tests must run, not skip (CARPD_REQUIRE_NETNS=1).
## It first installs what the tests run that is missing (deps), and checks the size budget
## after cross (size-check).
test: deps
	$(MAKE) lint unit cross size-check qemu-test fuzz-smoke ipk-test apk-test

## deps: the Debian packages the tests run (scripts/deps.sh has the list and why): as root,
## apt-get installs the missing ones; otherwise it names them and fails. A dpkg-query when
## nothing is missing. CARPD_NO_DEPS=1 skips it.
deps:
	@sh scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	GOOS=freebsd $(GO) vet $$($(GO) list ./... | grep -v /bench/)
	$(GO) mod tidy -diff
	GO='$(GO)' $(GO) run ./scripts/sizecheck lint

## size-check: the stripped dist/carpd-mips_24kc within its 5,000,000-byte budget and without
## what was cut to get there: os/exec, Go's DNS resolver, more generic sorts than today's
## (docs/size-budget.md; `make lint` checks the same rules in the source).
size-check: cross
	$(GO) run ./scripts/sizecheck binary dist/carpd-mips_24kc

## unit: go test's own -timeout covers the tests; `timeout` also bounds a test binary that
## hangs after its tests (seen once in the race runtime's exit), so CI fails instead of stalling.
unit:
	CGO_ENABLED=1 CARPD_REQUIRE_NETNS=1 timeout --signal=QUIT --kill-after=30s 40m $(GO) test -race -count=1 -timeout 30m ./...

## cross: static binaries for every OpenWrt target in dist/.
cross:
	@mkdir -p dist
	@set -e; for t in $(CROSS); do \
		name=$${t%%:*}; rest=$${t#*:}; arch=$${rest%%:*}; env=$${rest#*:}; \
		echo "build dist/carpd-$$name (GOARCH=$$arch $$env)"; \
		env GOOS=linux GOARCH=$$arch $$env $(GO) build $(CARPD_BUILDFLAGS) -ldflags '$(LDFLAGS)' -o dist/carpd-$$name . ; \
	done
	CARPD_DIST=$(CURDIR)/dist CARPD_REQUIRE_QEMU=1 $(GO) test -count=1 -run 'TestCrossBinaries' -v .

## qemu-test: the codec, HMAC, state-machine and UCI tests on big-endian MIPS (soft float).
## Namespace tests skip here (qemu-user translates netlink only in part); `unit` runs them natively.
qemu-test:
	CARPD_QEMU_USER=1 CARPD_REQUIRE_NETNS=0 GOOS=linux GOARCH=mips GOMIPS=softfloat $(GO) test -count=1 -exec qemu-mips-static ./internal/carp/ ./internal/carp/carptest ./internal/openwrt ./internal/config ./ubus/... ./internal/ctsync/flow ./internal/ctsync/wire

FUZZ_TARGETS := ./internal/carp:FuzzAdvert ./internal/carp:FuzzCounter ./internal/daemon:FuzzReadRequest ./internal/daemon:FuzzUbusArgs ./internal/openwrt:FuzzParseUCI ./internal/openwrt:FuzzParseConfig ./internal/vip:FuzzARPPacket ./internal/vip:FuzzNeighborAdvert ./ubus/blob:FuzzBlobAttr ./ubus/blob:FuzzBlobmsg ./ubus/blob:FuzzFromJSON ./ubus:FuzzMessage ./internal/ctsync/wire:FuzzDecodeRecords ./internal/ctsync/wire:FuzzOpenFrame ./internal/ctsync/wire:FuzzHeader ./internal/vip:FuzzIfInfoMsg ./internal/vip:FuzzIfAddrMsg ./internal/apk:FuzzRead ./internal/track:FuzzParseEchoReply ./internal/metrics:FuzzWrite ./internal/ctsync/kernel:FuzzParseMessage ./ubus/json:FuzzUnmarshal ./ubus/json:FuzzDecoder ./internal/daemon:FuzzJSONDecode ./internal/leases:FuzzParse ./internal/nl:FuzzParseMessages ./internal/cfgsync:FuzzAssembler ./internal/cfgsync:FuzzDiff

## fuzz-smoke: a short run of every fuzz target (FUZZTIME each); `make fuzz FUZZTIME=5m` for longer.
## FUZZMINIMIZE bounds go test's minimizing of each input that finds new coverage: by default
## up to 60 s of n² runs for n bytes, shown as 0 execs/s (FuzzRead's 500-700 B seeds stalled
## 2-9 s per new input, most of a 10 s smoke run); with 10000 runs the run keeps fuzzing.
## A run that fails with "context deadline exceeded" and writes no failing input is Go 1.26's
## fuzz-coordinator race at the end of -fuzztime (go.dev/issue/75804, fixed in Go 1.27), not a
## finding: it is reported and skipped. Any failing input fails the target.
fuzz-smoke fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		if $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg >$$log 2>&1; then cat $$log; continue; fi; \
		cat $$log; \
		if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
			echo "fuzz $$fn: Go's fuzz-coordinator deadline race (go.dev/issue/75804), no failing input: not a finding"; \
		else exit 1; fi; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/carp/ ./internal/openwrt

## bench-failover: client-visible outage of carpd, ucarp and keepalived in one lab run (root),
## each idle and with the cores loaded (stress-ng). BENCH_FAILOVER_FLAGS adds flags, e.g.
## '-idle 5m' for issue #14's 5-minute false-takeover window, '-only carpd04,kad3-02'.
BENCH_FAILOVER_FLAGS ?=
bench-failover: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/failover $(BENCH_FAILOVER_FLAGS) -out bench/failover-results.md

clean:
	rm -rf bin dist

## bench-track: client-visible outage when the master's upstream path dies (links up): carpd's
## ping tracker at interval 1 s and 0.2 s next to keepalived's vrrp_script ping, in one lab run (root).
bench-track: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/track -out bench/track-results.md

## bench-sync: carpd's state sync next to conntrackd (FTFW) in one lab run (root).
bench-sync: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/sync -out bench/sync-results.md

## bench-follow: issue #12, the router follows the master: bytes on the sync link per DHCP
## lease event and for a 1 000-lease bulk, two carpd routers in one lab run (root).
bench-follow: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/follow -out bench/follow-results.md

## bench-cfgsync: issue #12, configuration sync: time from a UCI change on the primary to the
## secondary's reload, and bytes on the sync link per change, two carpd routers in one lab run (root).
bench-cfgsync: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/cfgsync -out bench/cfgsync-results.md

## ipk: OpenWrt packages without the SDK, dist/carpd_<version>_<arch>.ipk for every CROSS
## target, from the `make cross` binaries (see cmd/mkipk, internal/ipk, package/version.sh),
## and dist/luci-app-carpd_<version>_all.ipk from package/luci-app-carpd.
## Reproducible: the same commit gives the same bytes (mtimes = SOURCE_DATE_EPOCH, by
## default the last commit's time). The version: package/version.sh plus -r$(IPK_RELEASE).
IPK_VERSION ?= $(shell sh package/version.sh)-r$(IPK_RELEASE)
IPK_RELEASE ?= 1
IPK_EPOCH = $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct))
ipk: cross
	$(GO) build $(GOFLAGS_BUILD) -o bin/mkipk ./cmd/mkipk
	@set -e; v='$(IPK_VERSION)'; e='$(IPK_EPOCH)'; \
	case "$$v" in -r*|*' '*|'') echo "make ipk: bad version '$$v' (package/version.sh failed?)"; exit 1;; esac; \
	for t in $(CROSS); do name=$${t%%:*}; \
		bin/mkipk -bin dist/carpd-$$name -files package/carpd/files -arch $$name -version "$$v" -epoch "$$e" -out dist; \
	done; \
	bin/mkipk -luci package/luci-app-carpd -version "$$v" -epoch "$$e" -out dist

## ipk-test: unpack every dist/*.ipk and check it: format, control fields, modes, conffiles,
## scripts, ELF machine/byte order/soft float, `carpd version` under qemu-user, and that a
## second build gives the same bytes; for luci-app-carpd (TestDistLuci) its files, 0644
## modes, JSON, LuCI's postinst-pkg and the same version as carpd.
ipk-test: ipk
	CARPD_DIST=$(CURDIR)/dist CARPD_REQUIRE_QEMU=1 CARPD_IPK_VERSION='$(IPK_VERSION)' SOURCE_DATE_EPOCH='$(IPK_EPOCH)' \
		$(GO) test -count=1 -run 'TestDist|TestMIPSFPUScan' -v ./internal/ipk

## ipk-size: what each dependency costs in the mips_24kc binary (package/SIZE.md): symbol
## sizes of an unstripped build, scaled to the stripped dist/carpd-mips_24kc.
ipk-size: cross
	env GOOS=linux GOARCH=mips GOMIPS=softfloat $(GO) build $(CARPD_BUILDFLAGS) -ldflags '-X main.version=$(VERSION)' -o bin/carpd-mips_24kc.unstripped .
	$(GO) run ./cmd/mkipk -size-report bin/carpd-mips_24kc.unstripped -bin dist/carpd-mips_24kc

.PHONY: ipk ipk-test ipk-size

## apk: the same packages for OpenWrt 25.12+ (apk-tools v3, ADB format), unsigned:
## dist/apk/<arch>/carpd-<version>.apk for every CROSS target and
## dist/apk/noarch/luci-app-carpd-<version>.apk (an apk repository's layout), from the
## same binaries, files, version and SOURCE_DATE_EPOCH as `make ipk` (cmd/mkipk -format apk,
## internal/apk). Install with `apk add --allow-untrusted`.
apk: cross
	$(GO) build $(GOFLAGS_BUILD) -o bin/mkipk ./cmd/mkipk
	@set -e; v='$(IPK_VERSION)'; e='$(IPK_EPOCH)'; \
	case "$$v" in -r*|*' '*|'') echo "make apk: bad version '$$v' (package/version.sh failed?)"; exit 1;; esac; \
	for t in $(CROSS); do name=$${t%%:*}; \
		bin/mkipk -format apk -bin dist/carpd-$$name -files package/carpd/files -arch $$name -version "$$v" -epoch "$$e" -out dist/apk; \
	done; \
	bin/mkipk -format apk -luci package/luci-app-carpd -version "$$v" -epoch "$$e" -out dist/apk

## apk-test: decode every dist/apk package with internal/apk's reader and check it against
## the .ipk of the same version (files, modes, contents), OpenWrt's /lib/apk/packages
## lists and scripts, the ELF, and that a second build gives the same bytes. With
## CARPD_APK_TOOL=/path/to/apk (apk-tools 3.x; root, busybox-static) TestAPKTool also
## installs, upgrades and removes them in a scratch root with the real apk.
apk-test: ipk apk
	CARPD_DIST=$(CURDIR)/dist CARPD_IPK_VERSION='$(IPK_VERSION)' SOURCE_DATE_EPOCH='$(IPK_EPOCH)' \
		$(GO) test -count=1 -run 'TestDistAPK|TestAPKTool' -v ./internal/apk

.PHONY: apk apk-test
