package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	// DefaultProbeInterval is the probe interval when StartProbe is given 0.
	DefaultProbeInterval = 10 * time.Millisecond
	// DefaultProbeMax bounds a probe when StartProbe is given 0.
	DefaultProbeMax = time.Minute

	// probeGrace is how long a stopping probe waits for the replies to
	// the requests still in flight, and how old an unanswered request
	// must be before Snapshot counts it as lost.
	probeGrace = 200 * time.Millisecond
	// graceStep is the polling period during the grace wait.
	graceStep = 5 * time.Millisecond
	// maxProbes bounds the requests of one probe (43 min at 10 ms).
	maxProbes = 1 << 18
	// maxReads bounds the receiver's loop (foreign ICMP included).
	maxReads = 16 * maxProbes
	// probeWriteTimeout bounds one send.
	probeWriteTimeout = time.Second

	// The echo payload: an 8-byte tag identifying the probe, then the
	// 8-byte index of the request (the 16-bit sequence number wraps).
	//
	//	0      8      16
	//	| tag  | index |
	tagOff    = 0
	indexOff  = 8
	payloadSz = 16

	protoICMP   = 1  // IANA protocol number of ICMP, for icmp.ParseMessage
	protoICMPv6 = 58 // IANA protocol number of ICMPv6
)

// A Probe sends ICMP echo requests from a host to a target at a fixed
// interval and records, for every request, when it was sent and when its
// reply came back. It measures the outage a client sees during a failover.
type Probe struct {
	host     *Host
	target   netip.Addr
	dst      *net.IPAddr
	interval time.Duration
	limit    time.Duration
	conn     *icmp.PacketConn
	id       int    // ICMP identifier
	tag      uint64 // payload tag; replies without it are someone else's

	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
	wg       sync.WaitGroup // sender and receiver

	mu      sync.Mutex // guards the fields below
	records []probeRecord
	result  *ProbeResult // set by Stop
}

// probeRecord is one echo request.
type probeRecord struct {
	sent time.Time
	recv time.Time // zero: no reply (yet)
}

// StartProbe starts probing target (IPv4 or IPv6; a link-local IPv6 target
// needs a zone) from the host: one ICMP echo request every interval (0
// means DefaultProbeInterval) until Stop, Lab.Close, or limit has passed (0
// means DefaultProbeMax), whichever comes first. It sends from a raw ICMP
// socket opened in the host's namespace. Stop returns the results.
func (h *Host) StartProbe(target netip.Addr, interval, limit time.Duration) (*Probe, error) {
	if !target.IsValid() {
		return nil, fmt.Errorf("lab: %s: probe: invalid target", h)
	}
	target = target.Unmap()
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	if limit <= 0 {
		limit = DefaultProbeMax
	}
	l := h.lab
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.ops.Done()

	network, laddr := "ip4:icmp", "0.0.0.0"
	if target.Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	var conn *icmp.PacketConn
	err := h.Do(func() error {
		var err error
		conn, err = icmp.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: %s: probe socket: %w", h, err)
	}
	// Only echo replies wake the receiver; best effort.
	if target.Is4() {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		_ = conn.IPv4PacketConn().SetICMPFilter(&f)
	} else {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		_ = conn.IPv6PacketConn().SetICMPFilter(&f)
	}

	p := &Probe{
		host:     h,
		target:   target,
		dst:      &net.IPAddr{IP: target.AsSlice(), Zone: target.Zone()},
		interval: interval,
		limit:    limit,
		conn:     conn,
		id:       int(rand.Uint32() & 0xffff),
		tag:      rand.Uint64(),
		stop:     make(chan struct{}),
	}
	l.mu.Lock()
	l.probes = append(l.probes, p)
	l.mu.Unlock()
	p.wg.Add(2)
	go p.receive()
	go p.send()
	return p, nil
}

// send sends the requests, then waits for the replies in flight and closes
// the socket, which ends receive.
func (p *Probe) send() {
	defer p.wg.Done()
	defer p.conn.Close()
	deadline := time.NewTimer(p.limit)
	defer deadline.Stop()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	typ := icmp.Type(ipv4.ICMPTypeEcho)
	if p.target.Is6() {
		typ = ipv6.ICMPTypeEchoRequest
	}
	payload := make([]byte, payloadSz)
	binary.BigEndian.PutUint64(payload[tagOff:], p.tag)

send:
	for i := range maxProbes {
		binary.BigEndian.PutUint64(payload[indexOff:], uint64(i))
		m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: i & 0xffff, Data: payload}}
		b, err := m.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			break
		}
		now := time.Now()
		p.mu.Lock()
		p.records = append(p.records, probeRecord{sent: now})
		p.mu.Unlock()
		// A failed send (no route, neighbour unreachable) is a lost probe.
		_ = p.conn.SetWriteDeadline(now.Add(probeWriteTimeout))
		_, _ = p.conn.WriteTo(b, p.dst)
		select {
		case <-p.stop:
			break send
		case <-deadline.C:
			break send
		case <-tick.C:
		}
	}
	for range probeGrace / graceStep {
		if p.allAnswered() {
			return
		}
		time.Sleep(graceStep)
	}
}

// allAnswered reports whether every request sent has its reply.
func (p *Probe) allAnswered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.records {
		if r.recv.IsZero() {
			return false
		}
	}
	return true
}

// receive matches echo replies to requests until the socket is closed.
func (p *Probe) receive() {
	defer p.wg.Done()
	proto := protoICMP
	if p.target.Is6() {
		proto = protoICMPv6
	}
	buf := make([]byte, 1500)
	for range maxReads {
		n, _, err := p.conn.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(graceStep) // transient; do not spin
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != p.id || len(echo.Data) < payloadSz ||
			binary.BigEndian.Uint64(echo.Data[tagOff:]) != p.tag {
			continue
		}
		i := binary.BigEndian.Uint64(echo.Data[indexOff:])
		p.mu.Lock()
		if i < uint64(len(p.records)) && p.records[i].recv.IsZero() {
			p.records[i].recv = now
		}
		p.mu.Unlock()
	}
}

// Stop stops sending, waits up to 200 ms for the replies still in flight,
// waits for the probe's goroutines and returns the results. Requests still
// unanswered then count as lost. Stop is idempotent.
func (p *Probe) Stop() ProbeResult {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.result == nil {
		r := summarize(p.records)
		p.result = &r
	}
	return *p.result
}

// Snapshot returns the results so far, without stopping: it covers the
// requests sent more than 200 ms ago, whose replies have had time to come.
func (p *Probe) Snapshot() ProbeResult {
	cutoff := time.Now().Add(-probeGrace)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.result != nil {
		return *p.result
	}
	n := len(p.records)
	for n > 0 && !p.records[n-1].sent.Before(cutoff) {
		n--
	}
	return summarize(p.records[:n])
}

// RepliesSince returns how many requests sent at or after t have been
// answered so far: a test waits on it for a service to come back.
func (p *Probe) RepliesSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := len(p.records) - 1; i >= 0 && !p.records[i].sent.Before(t); i-- {
		if !p.records[i].recv.IsZero() {
			n++
		}
	}
	return n
}

// ProbeResult summarizes a probe.
type ProbeResult struct {
	Sent     int // requests sent (or attempted: a failed send is a lost request)
	Received int // requests answered, however late
	Lost     int // Sent - Received
	// Outages are the runs of consecutive lost requests, in order.
	Outages []Outage
}

// An Outage is a run of consecutive lost requests.
type Outage struct {
	// Start is when the last answered request before the run was sent;
	// for a run at the very beginning, when its first request was sent.
	Start time.Time
	// End is when the first answered request after the run was sent; for
	// a run still going when the probe stopped (Open), when its last
	// request was sent.
	End      time.Time
	Duration time.Duration // End - Start
	Lost     int           // requests lost in the run
	Open     bool          // no request was answered after the run
}

// Longest returns the duration of the longest outage, 0 if there was none.
// An open outage counts with the part that was observed.
func (r ProbeResult) Longest() time.Duration {
	var d time.Duration
	for _, o := range r.Outages {
		d = max(d, o.Duration)
	}
	return d
}

// String summarizes r on one line.
func (r ProbeResult) String() string {
	return fmt.Sprintf("sent %d, received %d, lost %d, %d outages, longest %v",
		r.Sent, r.Received, r.Lost, len(r.Outages), r.Longest())
}

// summarize turns records, in sending order, into a ProbeResult.
func summarize(records []probeRecord) ProbeResult {
	var r ProbeResult
	lastOK, runStart := -1, -1 // indexes into records; -1: none
	outage := func(end int, open bool) Outage {
		from := runStart
		if lastOK >= 0 {
			from = lastOK
		}
		o := Outage{Start: records[from].sent, End: records[end].sent, Open: open}
		o.Duration = o.End.Sub(o.Start)
		if open {
			o.Lost = end - runStart + 1
		} else {
			o.Lost = end - runStart
		}
		return o
	}
	for i, rec := range records {
		r.Sent++
		if rec.recv.IsZero() {
			r.Lost++
			if runStart < 0 {
				runStart = i
			}
			continue
		}
		r.Received++
		if runStart >= 0 {
			r.Outages = append(r.Outages, outage(i, false))
			runStart = -1
		}
		lastOK = i
	}
	if runStart >= 0 {
		r.Outages = append(r.Outages, outage(len(records)-1, true))
	}
	return r
}
