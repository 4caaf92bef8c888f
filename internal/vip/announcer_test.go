package vip

import "github.com/carpd/carpd/internal/carp"

// Linux is what the daemon hands carp.NewVHost: it must satisfy the
// consumer's interface, which carp owns.
var _ carp.Announcer = (*Linux)(nil)
