# carpd — see README.md. Targets that touch namespaces need root.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -buildvcs=false
BIN      := bin/carpd
FUZZTIME ?= 10s
export CGO_ENABLED := 0

# OpenWrt targets: name GOOS/GOARCH extra-env
CROSS := mips_24kc:mips:GOMIPS=softfloat \
         mipsel_24kc:mipsle:GOMIPS=softfloat \
         arm_cortex-a7_neon-vfpv4:arm:GOARM=7 \
         aarch64_cortex-a53:arm64: \
         x86_64:amd64:

.PHONY: all build demo test unit e2e lint cross qemu-test fuzz fuzz-smoke bench bench-failover bench-sync clean

all: build

build:
	$(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN) .

## demo: two routers in network namespaces, a client pinging the VIP, crash, takeover, preempt.
demo: build
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root (network namespaces): sudo make demo"; exit 1; }
	$(GO) run ./lab/demo -carpd $(BIN)

## test: everything CI runs. Namespace tests must run, not skip (CARPD_REQUIRE_NETNS=1).
test: lint unit cross qemu-test fuzz-smoke

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	GOOS=freebsd $(GO) vet $$($(GO) list ./... | grep -v /bench/)
	$(GO) mod tidy -diff

unit:
	CGO_ENABLED=1 CARPD_REQUIRE_NETNS=1 $(GO) test -race -count=1 -timeout 30m ./...

## cross: static binaries for every OpenWrt target in dist/.
cross:
	@mkdir -p dist
	@set -e; for t in $(CROSS); do \
		name=$${t%%:*}; rest=$${t#*:}; arch=$${rest%%:*}; env=$${rest#*:}; \
		echo "build dist/carpd-$$name (GOARCH=$$arch $$env)"; \
		env GOOS=linux GOARCH=$$arch $$env $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o dist/carpd-$$name . ; \
	done
	CARPD_DIST=$(CURDIR)/dist CARPD_REQUIRE_QEMU=1 $(GO) test -count=1 -run 'TestCrossBinaries' -v .

## qemu-test: the codec, HMAC, state-machine and UCI tests on big-endian MIPS (soft float).
qemu-test:
	GOOS=linux GOARCH=mips GOMIPS=softfloat $(GO) test -count=1 -exec qemu-mips-static ./carp/ ./carp/carptest ./openwrt ./config ./ubus/... ./ctsync/flow ./ctsync/wire

FUZZ_TARGETS := ./carp:FuzzAdvert ./openwrt:FuzzParseUCI ./openwrt:FuzzParseConfig ./vip:FuzzARPPacket ./vip:FuzzNeighborAdvert ./ubus/blob:FuzzBlobAttr ./ubus/blob:FuzzBlobmsg ./ubus/blob:FuzzFromJSON ./ubus:FuzzMessage ./ctsync/wire:FuzzDecodeRecords ./ctsync/wire:FuzzOpenFrame ./ctsync/wire:FuzzHeader

## fuzz-smoke: a short run of every fuzz target (FUZZTIME each); `make fuzz FUZZTIME=5m` for longer.
fuzz-smoke fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./carp/ ./openwrt

## bench-failover: client-visible outage of carpd, ucarp and keepalived in one lab run (root).
bench-failover: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/failover -out bench/failover-results.md

clean:
	rm -rf bin dist

## bench-sync: carpd's state sync next to conntrackd (FTFW) in one lab run (root).
bench-sync: build
	CARPD_BIN=$(CURDIR)/$(BIN) $(GO) run ./bench/sync -out bench/sync-results.md
