package daemon

import "errors"

// Errors of the control API, shared by the control socket and ubus: the
// ubus object maps each to a ubus status (docs/architecture.md#house-rules, rule 6).
var (
	// ErrInvalidArgument: a request argument is missing or wrong.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the request names a vhid that is not configured.
	ErrNotFound = errors.New("not found")
	// ErrNotSupported: the feature is not configured or not available.
	ErrNotSupported = errors.New("not supported")
)
