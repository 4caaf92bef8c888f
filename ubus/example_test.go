package ubus_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
)

// A daemon keeps its object registered across ubusd restarts with a Client,
// and publishes state changes as events.
func ExampleNewClient() {
	status := func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{"state":"MASTER","vhid":5}`), nil
	}
	failover := func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
		var a struct {
			VHID *int `json:"vhid"` // ubus_rpc_session and other extras are ignored
		}
		if err := json.Unmarshal(args, &a); err != nil || a.VHID == nil {
			return nil, ubus.StatusInvalidArgument.Err()
		}
		return nil, nil
	}
	cfg := &ubus.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	cl := ubus.NewClient(ubus.DefaultSocket, cfg, func(ctx context.Context, c *ubus.Conn) error {
		_, err := c.AddObject(ctx, "carpd", []ubus.Method{
			{Name: "status", Handler: status},
			{Name: "failover", Signature: []ubus.Arg{{Name: "vhid", Type: blob.TypeInt32}}, Handler: failover},
		})
		return err
	})
	defer cl.Close()

	// Fails fast with ErrNotConnected while ubusd is away.
	_ = cl.Send(context.Background(), "carp.state", json.RawMessage(`{"vhid":5,"state":"MASTER"}`))
}
