// Package lab builds throw-away network labs out of Linux network namespaces,
// veth pairs and bridges, for carpd's end-to-end tests, `make demo` and the
// failover benchmarks of BENCHMARKS.md. It is test tooling: it shells out to
// iproute2 (`ip`) and needs root.
//
// # Building blocks
//
//   - [Lab]: owns everything below and tears it all down in [Lab.Close].
//   - [Host]: one network namespace (a router, a client, a server), with `lo`
//     up and the sysctls listed at [Lab.Host].
//   - [Switch]: one L2 segment, a bridge `br0` living in a namespace of its
//     own, with STP, multicast snooping and bridge netfilter off.
//   - [Link]: a veth pair from a Host into a Switch ([Lab.Attach]).
//     [Link.SetUp] drops the carrier as the host sees it, the way a pulled
//     cable or a dead switch port does.
//   - [Proc]: a long-running process in a Host ([Host.Start]), its output kept
//     in a 256 KiB ring buffer.
//   - [Probe]: an ICMP echo prober that measures client-visible outages
//     ([Host.StartProbe]).
//
// A test looks like this:
//
//	func TestSomething(t *testing.T) {
//		lab.Require(t) // skip (or fail, with CARPD_REQUIRE_NETNS=1) without root
//		l, err := lab.New("carpe")
//		if err != nil {
//			t.Fatal(err)
//		}
//		lab.Cleanup(t, l)
//		sw, _ := l.Switch("lan")
//		r1, _ := l.Host("r1")
//		l.Attach(r1, sw, "eth0", "10.0.0.2/24")
//		...
//	}
//
// # Naming
//
// Every namespace is named `<prefix><pid>.<seq>-<name>`, for example
// `carpe4711.3-r1`: the prefix given to [New], the pid of the process that
// owns the lab, a per-process lab counter and the host or switch name. So
// parallel labs, parallel test binaries and the leftovers of a crashed run
// never collide, and [SweepStale] can tell a leftover (its pid is gone) from a
// lab still in use. Interfaces are only ever created inside lab namespaces,
// never in the caller's namespace, so their names only have to be unique per
// namespace: the bridge is `br0`, a host's interface has the name given to
// [Lab.Attach], and the bridge-side end of a veth is `v<n>-<host>`, cut to
// 15 bytes.
//
// # Cleanup guarantees
//
//   - [Lab.Close] (registered by [Cleanup]) stops every probe, SIGKILLs every
//     process started through [Host.Start] and its process group, waits for
//     them, SIGKILLs whatever else still runs inside the lab's namespaces (a
//     daemon that double-forked out of its group), and deletes every
//     namespace the lab created, which destroys their veths and bridges. It is idempotent and safe to call concurrently with
//     the lab's other methods; anything those create after Close has begun
//     fails with [ErrClosed].
//   - Processes get SIGKILL from the kernel when the test binary dies
//     (Pdeathsig), so none survives a crash or a `go test -timeout` panic.
//     Pdeathsig fires when the creating OS thread exits, not only the process;
//     the Go runtime only ends threads whose goroutine exits while locked, and
//     this package never starts processes from such a goroutine.
//   - When a started process exits, the rest of its process group is killed
//     too, so a daemon's forked helpers do not outlive it.
//   - Namespaces cannot be removed by the kernel on a crash. [New] therefore
//     calls [SweepStale] for its prefix, which deletes the namespaces (and
//     kills the processes inside them) left by processes that no longer exist.
//   - Every short command ([Host.Run] and the `ip` commands behind the other
//     methods) runs under a timeout (10 s unless the caller's context says
//     otherwise); a probe stops after its limit even without Stop; every loop
//     in the package is bounded in count and time.
//
// # Environment
//
// CARPD_REQUIRE_NETNS=1 makes [Require] fail the test instead of skipping it
// when namespaces are unavailable, so that CI cannot pass by skipping.
// CARPD_QEMU_USER=1 (set by `make qemu-test`) makes namespaces unavailable:
// qemu-user translates netlink between byte orders only in part, so the
// kernel glue is tested natively, in `make unit`.
package lab
