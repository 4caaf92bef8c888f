// Package docscheck keeps docs/ in step with the code. It has no code of its
// own, only tests:
//
//   - every option the UCI mapper accepts (the case labels of the option
//     switches in internal/openwrt/config.go and internal/openwrt/sync.go) is in the table of
//     its section in docs/uci.md, and every option documented there is
//     accepted by the parser;
//   - every method the ubus object carpd registers (internal/daemon/ubus.go) and every
//     control-socket method (internal/daemon/control.go) is in docs/ubus.md, and so is
//     every JSON field of the status document and of the carp.state event;
//   - every file a package comment lists under "Layout:" exists;
//   - no file of the repository cites the design notes that live outside it.
//
// The lists are read from the code (go/ast, reflection), not written down
// here, so a new option or method without documentation fails a test.
package docscheck
