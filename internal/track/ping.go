package track

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Fast probing (docs/trackers.md#fast-probing).
const (
	maxProbes      = 3                      // probes per target per round
	minRetryWait   = 50 * time.Millisecond  // floor of the wait before a retry
	minSuspectWait = 100 * time.Millisecond // floor of a suspect round's timeout
	minSpacing     = 50 * time.Millisecond  // floor of the spacing of suspect rounds
	rttWindow      = 8                      // RTT samples per target for "recent"
	// maxOutstanding bounds the probes a target remembers awaiting a
	// late reply.
	maxOutstanding = 16
)

// target is one probed address.
type target struct {
	addr     netip.Addr
	sent     uint64
	received uint64
	lastRTT  time.Duration
	rtts     [rttWindow]time.Duration
	nrtt     int
	// outstanding: the probes sent and not answered, by sequence.
	outstanding map[uint16]time.Time
	// answered: the target answered in the current round.
	answered bool
	probes   int       // probes sent in the current round
	lastSend time.Time // of the current round's last probe
}

func (tg *target) maxRTT() time.Duration {
	var m time.Duration
	for i := 0; i < tg.nrtt && i < rttWindow; i++ {
		m = max(m, tg.rtts[i])
	}
	return m
}

// reply is a received echo reply that passed the decoder's checks.
type reply struct {
	src netip.Addr
	e   echo
	at  time.Time
}

// pingProber sends ICMP echo itself through raw sockets.
type pingProber struct {
	t       *Tracker
	id      uint16
	nonce   uint64
	seq     uint16
	targets []*target
	suspect bool

	replies chan reply
	sock    [2]ICMPConn // IPv4, IPv6
	readers sync.WaitGroup
	device  string // the device the sockets are bound to
	ifindex int
	msg     []byte
}

func newPingProber(t *Tracker) prober {
	var r [10]byte
	_, _ = rand.Read(r[:])
	p := &pingProber{t: t, id: binary.BigEndian.Uint16(r[:2]), nonce: binary.BigEndian.Uint64(r[2:]),
		replies: make(chan reply, 64)}
	for _, a := range t.cfg.Targets {
		p.targets = append(p.targets, &target{addr: a.Unmap(), outstanding: map[uint16]time.Time{}})
	}
	t.mu.Lock()
	t.st.Dropped = map[string]uint64{}
	t.st.Targets = p.targetStatus()
	t.mu.Unlock()
	return p
}

func (p *pingProber) targetStatus() []TargetStatus {
	out := make([]TargetStatus, len(p.targets))
	for i, tg := range p.targets {
		out[i] = TargetStatus{Address: tg.addr.String(), Sent: tg.sent, Received: tg.received,
			RTTms: float64(tg.lastRTT.Microseconds()) / 1000}
	}
	return out
}

func (p *pingProber) drop(reason string) {
	p.t.mu.Lock()
	p.t.st.Dropped[reason]++
	p.t.mu.Unlock()
}

// resolveDevice returns the device the sockets bind to: cfg.Device itself
// when it is a device, otherwise the L3 device of the OpenWrt network of
// that name (through netifd).
func (p *pingProber) resolveDevice(ctx context.Context) (string, int, error) {
	name := p.t.cfg.Device
	if name == "" {
		return "", 0, nil
	}
	if ifi, err := net.InterfaceByName(name); err == nil {
		return name, ifi.Index, nil
	}
	if p.t.env.Netifd == nil {
		return "", 0, fmt.Errorf("no device %s", name)
	}
	nctx, cancel := context.WithTimeout(ctx, max(p.t.cfg.Timeout, time.Second)) // a hung netifd must not stop the rounds
	st, err := p.t.env.Netifd.Status(nctx, name)
	cancel()
	if err != nil {
		return "", 0, fmt.Errorf("%s is neither a device nor a network netifd knows: %v", name, err)
	}
	if st.Device == "" {
		return "", 0, fmt.Errorf("network %s has no device (down?)", name)
	}
	ifi, err := net.InterfaceByName(st.Device)
	if err != nil {
		return "", 0, fmt.Errorf("network %s: device %s: %v", name, st.Device, err)
	}
	return st.Device, ifi.Index, nil
}

// ensureSockets (re)opens the sockets when the device changed (a PPPoE
// session's pppoe-wan comes back with a new index) or one failed.
func (p *pingProber) ensureSockets(ctx context.Context) error {
	dev, idx, err := p.resolveDevice(ctx)
	if err != nil {
		p.closeSockets()
		return err
	}
	if dev != p.device || idx != p.ifindex {
		p.closeSockets()
	}
	p.device, p.ifindex = dev, idx
	for fam := 0; fam < 2; fam++ {
		if p.sock[fam] != nil || !p.hasFamily(fam == 1) {
			continue
		}
		c, err := p.t.env.ICMP(fam == 1, dev)
		if err != nil {
			p.closeSockets()
			return err
		}
		p.sock[fam] = c
		p.readers.Add(1)
		go p.read(c, fam == 1)
	}
	return nil
}

func (p *pingProber) hasFamily(v6 bool) bool {
	for _, tg := range p.targets {
		if tg.addr.Is6() == v6 {
			return true
		}
	}
	return false
}

// famIndex is the index of addr's family in pingProber.sock.
func famIndex(addr netip.Addr) int {
	if addr.Is6() {
		return 1
	}
	return 0
}

// closeSocket closes one family's socket; its reader ends by itself (the
// replies it queued stay valid).
func (p *pingProber) closeSocket(fam int) {
	if c := p.sock[fam]; c != nil {
		c.Close()
		p.sock[fam] = nil
	}
}

func (p *pingProber) closeSockets() {
	for i := range p.sock {
		p.closeSocket(i)
	}
	p.readers.Wait()
	// Replies read before the close are for the old sockets' probes; they
	// are still valid answers and stay queued.
}

// read decodes replies until its socket is closed; only replies with the
// tracker's id and nonce go on.
func (p *pingProber) read(c ICMPConn, v6 bool) {
	defer p.readers.Done()
	buf := make([]byte, 1500)
	for {
		n, src, err := c.ReadFrom(buf, time.Time{})
		if err != nil {
			if errors.Is(err, net.ErrClosed) || isClosed(err) {
				return
			}
			p.drop("read_error")
			time.Sleep(10 * time.Millisecond) // bounded: the socket is closed eventually
			continue
		}
		at := p.t.env.Clock.Now()
		e, err := parseEchoReply(buf[:n], v6)
		switch {
		case err == errShortPayload && e.id != p.id:
			p.drop(dropID)
			continue
		case err == errShortPayload:
			p.drop(dropNonce)
			continue
		case err != nil:
			p.drop(err.Error())
			continue
		case e.id != p.id:
			p.drop(dropID)
			continue
		case e.nonce != p.nonce:
			p.drop(dropNonce)
			continue
		}
		select {
		case p.replies <- reply{src: src.Unmap().WithZone(""), e: e, at: at}:
		default:
			p.drop("queue_full")
		}
	}
}

// isClosed: the error of a read on a socket closed under it (os.File
// reports poll's "use of closed file", which has no exported sentinel).
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || err.Error() == "use of closed file"
}

func (p *pingProber) wake() <-chan struct{} { return nil }

func (p *pingProber) close() { p.closeSockets() }

// retryWait is clamp(3 × the largest recent RTT, 50 ms, timeout/4).
func (p *pingProber) retryWait() time.Duration {
	return clamp(3*p.maxRTT(), minRetryWait, p.t.cfg.Timeout/4)
}

// roundTimeout is the timeout in normal mode and clamp(4 × the largest
// recent RTT, 100 ms, timeout) in suspect mode.
func (p *pingProber) roundTimeout() time.Duration {
	if !p.suspect {
		return p.t.cfg.Timeout
	}
	return clamp(4*p.maxRTT(), minSuspectWait, p.t.cfg.Timeout)
}

func (p *pingProber) maxRTT() time.Duration {
	var m time.Duration
	for _, tg := range p.targets {
		m = max(m, tg.maxRTT())
	}
	return m
}

func clamp(d, lo, hi time.Duration) time.Duration {
	if d > hi {
		d = hi
	}
	if d < lo {
		d = lo
	}
	return d
}

// round sends one probe per target, retries the silent ones, and ends as
// soon as `reliability` targets answered or at the round's timeout.
func (p *pingProber) round(ctx context.Context) result {
	cfg := p.t.cfg
	clk := p.t.env.Clock
	start := clk.Now()
	// Suspect mode confirms a failure quickly; once the tracker is down
	// there is nothing to confirm, and probing continues at the normal
	// pace (a long outage must not cost five rounds a second).
	p.t.mu.Lock()
	if p.t.m.state == StateDown {
		p.suspect = false
	}
	p.t.mu.Unlock()
	// ProbeNow: confirm quickly, with the suspect round's short timeout.
	if p.t.probing.Swap(false) {
		p.suspect = true
	}
	for _, tg := range p.targets {
		tg.answered, tg.probes = false, 0
	}
	var sockErr string
	if err := p.ensureSockets(ctx); err != nil {
		sockErr = err.Error()
	}
	deadline := start.Add(p.roundTimeout())
	retry := p.retryWait()
	answered, gotReply := 0, false
	var sendErr string
	var failed [2]bool // by family: a send failed, reopen the socket
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := clk.Now()
		if answered >= cfg.Reliability || !now.Before(deadline) {
			break
		}
		// Send the due probes: the first at once, a retry after retry
		// wait without an answer, at most maxProbes.
		next := deadline
		if sockErr == "" {
			for _, tg := range p.targets {
				if tg.answered || tg.probes >= maxProbes {
					continue
				}
				due := tg.lastSend.Add(retry)
				if tg.probes == 0 || !now.Before(due) {
					if err := p.send(tg, now); err != nil {
						// This target is out for the round (no route,
						// device gone); the others are still probed.
						// Its family's socket is reopened next round.
						if sendErr == "" {
							sendErr = err.Error()
						}
						tg.probes = maxProbes
						failed[famIndex(tg.addr)] = true
						continue
					}
					due = now.Add(retry)
				}
				if tg.probes < maxProbes && due.Before(next) {
					next = due
				}
			}
		}
		timer.Reset(next.Sub(now))
		select {
		case <-ctx.Done():
			return result{}
		case <-timer.C():
		case r := <-p.replies:
			timer.Stop()
			// A reply that came between rounds (the answer of a target
			// the last round did not wait for) is no answer in this one.
			if tg := p.match(r); tg != nil && !r.at.Before(start) {
				gotReply = true
				if !tg.answered {
					tg.answered = true
					answered++
				}
			}
		}
	}
	// Late replies already queued count for the statistics.
	p.drainQueued()
	for fam, bad := range failed {
		if bad {
			p.closeSocket(fam)
		}
	}
	if sockErr == "" {
		sockErr = sendErr
	}
	good := answered >= cfg.Reliability
	// Any reply ends suspect mode; a round without any starts it (unless
	// the tracker is down already, see above; the machine has not seen
	// this round yet, so a round that makes it go down still counts as
	// suspect, which changes nothing as the next round starts calm).
	p.suspect = !good && !gotReply
	p.t.mu.Lock()
	p.t.st.Targets = p.targetStatus()
	p.t.mu.Unlock()
	reason := fmt.Sprintf("%d of %d targets answered", answered, len(p.targets))
	if sockErr != "" {
		reason += ": " + sockErr
	}
	if good {
		return result{reason: reason, err: sockErr}
	}
	return result{value: cfg.Weight, reason: reason, err: sockErr, fast: p.suspect}
}

func (p *pingProber) drainQueued() {
	for {
		select {
		case r := <-p.replies:
			p.match(r)
		default:
			return
		}
	}
}

// send sends one probe to tg.
func (p *pingProber) send(tg *target, now time.Time) error {
	v6 := tg.addr.Is6()
	c := p.sock[famIndex(tg.addr)]
	if c == nil {
		return errors.New("no socket")
	}
	p.seq++
	p.msg = appendEchoRequest(p.msg[:0], v6, p.id, p.seq, p.nonce)
	tg.probes++
	tg.lastSend = now
	if len(tg.outstanding) >= maxOutstanding {
		var oldest uint16
		var ot time.Time
		for s, at := range tg.outstanding {
			if ot.IsZero() || at.Before(ot) {
				oldest, ot = s, at
			}
		}
		delete(tg.outstanding, oldest)
	}
	tg.outstanding[p.seq] = now
	tg.sent++
	if err := c.WriteTo(p.msg, tg.addr); err != nil {
		return fmt.Errorf("send to %s: %v", tg.addr, err)
	}
	return nil
}

// match finds the target whose probe r answers, records the RTT and
// returns it; nil (and a drop counted) for a reply from another address,
// to an unknown sequence, or a duplicate. A late reply to an earlier
// round's probe counts: the path works, only slowly.
func (p *pingProber) match(r reply) *target {
	var byAddr *target
	for _, tg := range p.targets {
		if tg.addr.WithZone("") == r.src {
			byAddr = tg
			break
		}
	}
	if byAddr == nil {
		p.drop(dropSource)
		return nil
	}
	sent, ok := byAddr.outstanding[r.e.seq]
	if !ok {
		for _, tg := range p.targets {
			if _, other := tg.outstanding[r.e.seq]; other {
				p.drop(dropSource) // our probe, answered by someone else
				return nil
			}
		}
		p.drop(dropUnknown) // a duplicate, or older than we remember
		return nil
	}
	delete(byAddr.outstanding, r.e.seq)
	rtt := max(r.at.Sub(sent), 0)
	byAddr.received++
	byAddr.lastRTT = rtt
	byAddr.rtts[byAddr.nrtt%rttWindow] = rtt
	byAddr.nrtt++
	return byAddr
}
