package daemon

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

// TestConcurrentRequests: many clients at once (control socket and direct
// calls, as ubus makes them) on a daemon whose vhids wait for a device
// that does not exist: every request is served, none is lost (the loop
// applies them one at a time), and the race detector sees no shared state.
func TestConcurrentRequests(t *testing.T) {
	cfg := testConfig(t)
	for i := 1; i <= 3; i++ {
		cfg.VHIDs = append(cfg.VHIDs, config.VHID{Interface: "nosuchdev0", VHID: uint8(i), AdvBase: 1})
	}
	reloadCfg := *cfg
	d := runDaemon(t, cfg, Options{Load: func() (*config.Config, error) { c := reloadCfg; return &c, nil }})
	sock := cfg.Global.ControlSocket
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := Call(sock, Request{Method: "demote", By: 1}); err != nil {
					errs <- fmt.Errorf("demote: %w", err)
				}
				if err := d.Demote(2, "", "", 1); err != nil {
					errs <- fmt.Errorf("demote vhid 2: %w", err)
				}
				if _, err := d.Status(); err != nil {
					errs <- fmt.Errorf("status: %w", err)
				}
				if i%5 == 0 {
					if _, err := Call(sock, Request{Method: "reload"}); err != nil {
						errs <- fmt.Errorf("reload: %w", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := status(t, sock)
	if st.Demotion.Manual != min(workers*each, MaxDemotion) {
		t.Errorf("manual demotion %d, want %d", st.Demotion.Manual, min(workers*each, MaxDemotion))
	}
	if st.Reloads != workers*2 {
		t.Errorf("reloads %d, want %d", st.Reloads, workers*2)
	}
	if len(st.VHIDs) != 3 {
		t.Fatalf("vhids %+v", st.VHIDs)
	}
	for _, v := range st.VHIDs {
		// Not running, but status shows the demotion it will start with.
		want := min(workers*each, MaxDemotion)
		if v.VHID == 2 {
			want = min(2*workers*each, MaxDemotion)
		}
		if v.State != "INIT" || !strings.Contains(v.Error, "nosuchdev0") || int(v.Demotion) != want {
			t.Errorf("vhid %d: %s %q demotion %d, want %d", v.VHID, v.State, v.Error, v.Demotion, want)
		}
	}
}
