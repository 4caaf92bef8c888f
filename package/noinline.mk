# The packages of the carpd binary compiled without inlining (go build
# -gcflags=<package>=-l): the cold ones, that run at start, on a reload, on a
# ubus or control-socket call, for a log line or a status. Inlining copies a
# small function's body into every caller, and each copy costs code and pcln
# table bytes; in these packages that buys nothing a user could notice, and
# leaving it out takes two 64 KiB steps off the mips binary (cut 10 in
# package/SIZE.md, docs/size-budget.md#no-inlining-in-cold-packages).
#
# Never list a package of a hot path here: the runtime, sync, time, net,
# syscall, os, crypto, encoding/binary, carp, ctsync and vip keep inlining (scripts/sizecheck's hotPkgs refuses them, and
# wants every carpd package of the binary either here or there).
#
# Used by the Makefile (build, cross, ipk-size) and package/carpd/Makefile
# (the SDK build), so the shipped binary is the one measured. One package a
# line, no patterns: `go build` lets the last -gcflags that matches a package
# win, so each package gets exactly "-l".
CARPD_NOINLINE := \
	github.com/carpd/carpd \
	github.com/carpd/carpd/internal/asyncq \
	github.com/carpd/carpd/internal/balance \
	github.com/carpd/carpd/internal/cfgsync \
	github.com/carpd/carpd/internal/config \
	github.com/carpd/carpd/internal/daemon \
	github.com/carpd/carpd/internal/demote \
	github.com/carpd/carpd/internal/leases \
	github.com/carpd/carpd/internal/logx \
	github.com/carpd/carpd/internal/metrics \
	github.com/carpd/carpd/internal/nl \
	github.com/carpd/carpd/internal/openwrt \
	github.com/carpd/carpd/internal/rawsock \
	github.com/carpd/carpd/internal/track \
	github.com/carpd/carpd/ubus \
	github.com/carpd/carpd/ubus/blob \
	github.com/carpd/carpd/ubus/json \
	bufio \
	fmt \
	internal/fmtsort \
	io/fs \
	math/big \
	os/signal \
	path/filepath \
	reflect \
	runtime/debug \
	strconv \
	unicode

CARPD_NOINLINE_GCFLAGS := $(foreach p,$(CARPD_NOINLINE),-gcflags=$(p)=-l)
