package main

import (
	"flag"
	"strings"
	"testing"
)

// flagDefiner is what both flag.FlagSet and flagSet offer.
type bothFlags struct {
	std *flag.FlagSet
	own *flagSet
	// values read back after parsing, std's and own's
	get []func() (string, string)
}

func newBoth(name string, stdOut, ownOut *strings.Builder) *bothFlags {
	std := flag.NewFlagSet(name, flag.ContinueOnError)
	std.SetOutput(stdOut)
	return &bothFlags{std: std, own: newFlagSet(name, ownOut)}
}

// define gives both sets carpd's flags: those of demote (the most), run's
// -c, status's --json and maintenance's --wait.
func (b *bothFlags) define() {
	s1, s2 := b.std.String("s", "/var/run/carpd.sock", "control `socket` of the daemon"), b.own.String("s", "/var/run/carpd.sock", "control `socket` of the daemon")
	c1, c2 := b.std.String("c", "", "configuration `file`"), b.own.String("c", "", "configuration `file`")
	v1, v2 := b.std.Uint("vhid", 0, "only this `vhid` (default: all)"), b.own.Uint("vhid", 0, "only this `vhid` (default: all)")
	i1, i2 := b.std.String("interface", "", "only the vhids on this `interface`"), b.own.String("interface", "", "only the vhids on this `interface`")
	var g1, g2 string
	b.std.StringVar(&g1, "g", "", "the demotion `group` (default carp)")
	b.std.StringVar(&g1, "group", "", "the demotion `group` (default carp)")
	b.own.StringVar(&g2, "g", "", "the demotion `group` (default carp)")
	b.own.StringVar(&g2, "group", "", "the demotion `group` (default carp)")
	t1, t2 := b.std.Int("ttl", 0, "expires after this many `seconds`"), b.own.Int("ttl", 0, "expires after this many `seconds`")
	j1, j2 := b.std.Bool("json", false, "print JSON"), b.own.Bool("json", false, "print JSON")
	x1, x2 := b.std.Int("n", 7, "a count\nover two lines"), b.own.Int("n", 7, "a count\nover two lines")
	q1, q2 := b.std.Bool("q", true, "quiet"), b.own.Bool("q", true, "quiet")
	var w1, w2 waitFlag
	b.std.Var(&w1, "wait", "wait up to `SECONDS` (default 60)")
	b.own.Var(&w2, "0", "wait", "wait up to `SECONDS` (default 60)")
	var w3, w4 waitFlag
	b.std.Var(&w3, "w", "wait, no name")
	b.own.Var(&w4, "0", "w", "wait, no name")
	str := func(p, q *string) func() (string, string) { return func() (string, string) { return *p, *q } }
	b.get = append(b.get, str(s1, s2), str(c1, c2), str(i1, i2), str(&g1, &g2),
		func() (string, string) { return (*uintValue)(v1).String(), (*uintValue)(v2).String() },
		func() (string, string) { return (*intValue)(t1).String(), (*intValue)(t2).String() },
		func() (string, string) { return (*intValue)(x1).String(), (*intValue)(x2).String() },
		func() (string, string) { return (*boolValue)(j1).String(), (*boolValue)(j2).String() },
		func() (string, string) { return (*boolValue)(q1).String(), (*boolValue)(q2).String() },
		func() (string, string) { return w1.String(), w2.String() },
		func() (string, string) { return w3.String(), w4.String() })
}

// sameAsFlag parses args with both and fails t on any difference.
func sameAsFlag(t *testing.T, args []string) {
	t.Helper()
	var stdOut, ownOut strings.Builder
	b := newBoth("carpd demote", &stdOut, &ownOut)
	b.define()
	err1 := b.std.Parse(args)
	err2 := b.own.Parse(args)
	if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
		t.Fatalf("%q: flag says %v, flagSet %v", args, err1, err2)
	}
	if stdOut.String() != ownOut.String() {
		t.Fatalf("%q: flag writes\n%s\nflagSet writes\n%s", args, stdOut.String(), ownOut.String())
	}
	if err1 != nil {
		return
	}
	for i, g := range b.get {
		if v1, v2 := g(); v1 != v2 {
			t.Errorf("%q: value %d: flag %q, flagSet %q", args, i, v1, v2)
		}
	}
	if strings.Join(b.std.Args(), "\x00") != strings.Join(b.own.Args(), "\x00") || b.std.NArg() != b.own.NArg() || b.std.Arg(0) != b.own.Arg(0) || b.std.Arg(1) != b.own.Arg(1) {
		t.Errorf("%q: flag leaves %q, flagSet %q", args, b.std.Args(), b.own.Args())
	}
}

// TestFlagSetLikeFlag runs package flag and flagSet on every sequence of
// up to three of these arguments and compares values, remaining
// arguments, errors and output (usage included).
func TestFlagSetLikeFlag(t *testing.T) {
	tokens := []string{
		"-s", "--s", "-s=x", "--s=x", "-s=", "x", "-", "--", "---s", "-=", "--=x", "-x", "--nope=1",
		"-h", "--help", "-help=1", "-json", "--json", "-json=false", "--json=maybe", "-q=0",
		"-vhid", "--vhid=5", "-vhid=0x1f", "-vhid=-1", "-vhid=99999999999999999999", "-vhid=1_0",
		"-ttl", "-ttl=-3", "--ttl=9z", "-5", "-n=0b11", "-c", "--c=/tmp/a b",
		"-g", "--group=pl", "-interface=eth0", "--wait", "--wait=30", "-wait=true", "-wait=false",
		"-wait=x", "--wait=99999", "-w", "on", "off", "",
	}
	sameAsFlag(t, nil)
	for _, a := range tokens {
		sameAsFlag(t, []string{a})
		for _, b := range tokens {
			sameAsFlag(t, []string{a, b})
			for _, c := range tokens {
				sameAsFlag(t, []string{a, b, c})
			}
		}
	}
}
