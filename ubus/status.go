package ubus

import (
	"errors"
	"fmt"
)

// Status is a ubus status code, enum ubus_msg_status
// (docs/ubus-protocol.md#status-codes). It travels in the STATUS attribute of
// the final reply to every request.
type Status uint32

// Status codes.
const (
	StatusOK               Status = iota // UBUS_STATUS_OK
	StatusInvalidCommand                 // UBUS_STATUS_INVALID_COMMAND
	StatusInvalidArgument                // UBUS_STATUS_INVALID_ARGUMENT
	StatusMethodNotFound                 // UBUS_STATUS_METHOD_NOT_FOUND
	StatusNotFound                       // UBUS_STATUS_NOT_FOUND
	StatusNoData                         // UBUS_STATUS_NO_DATA
	StatusPermissionDenied               // UBUS_STATUS_PERMISSION_DENIED
	StatusTimeout                        // UBUS_STATUS_TIMEOUT
	StatusNotSupported                   // UBUS_STATUS_NOT_SUPPORTED
	StatusUnknownError                   // UBUS_STATUS_UNKNOWN_ERROR
	StatusConnectionFailed               // UBUS_STATUS_CONNECTION_FAILED
	StatusNoMemory                       // UBUS_STATUS_NO_MEMORY
	StatusParseError                     // UBUS_STATUS_PARSE_ERROR
	StatusSystemError                    // UBUS_STATUS_SYSTEM_ERROR
)

// statusNames are the enum names; statusText is libubus' ubus_strerror.
var (
	statusNames = [...]string{
		"OK", "INVALID_COMMAND", "INVALID_ARGUMENT", "METHOD_NOT_FOUND",
		"NOT_FOUND", "NO_DATA", "PERMISSION_DENIED", "TIMEOUT",
		"NOT_SUPPORTED", "UNKNOWN_ERROR", "CONNECTION_FAILED", "NO_MEMORY",
		"PARSE_ERROR", "SYSTEM_ERROR",
	}
	statusText = [...]string{
		"Success", "Invalid command", "Invalid argument", "Method not found",
		"Not found", "No response", "Permission denied", "Request timed out",
		"Operation not supported", "Unknown error", "Connection failed",
		"Out of memory", "Parsing message data failed", "System error",
	}
)

// String returns the enum name without its prefix, e.g. "METHOD_NOT_FOUND".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint32(s))
}

// Text returns the message `ubus` prints for the status (ubus_strerror).
func (s Status) Text() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return "Unknown error"
}

// Err returns nil for StatusOK and a *StatusError otherwise.
func (s Status) Err() error {
	if s == StatusOK {
		return nil
	}
	return &StatusError{Status: s}
}

// StatusError is a non-OK status: returned by requests whose reply carried
// one, and returned by method handlers to choose the status they answer with
// (any other handler error answers UNKNOWN_ERROR).
type StatusError struct {
	Status Status
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("ubus: %s (%d)", e.Status.Text(), uint32(e.Status))
}

// Is lets errors.Is(err, &ubus.StatusError{Status: ubus.StatusNotFound})
// match on the status.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Status == e.Status
}

// StatusOf returns the status an error maps to: StatusOK for nil, the status
// of a *StatusError anywhere in the chain, StatusUnknownError otherwise.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return StatusUnknownError
}
