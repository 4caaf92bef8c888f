package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// flagSet parses the flags of carpd's subcommands exactly as the standard
// library's flag.FlagSet with ContinueOnError does (flags_test.go runs both
// on the same arguments and compares values, remaining arguments and every
// byte written), for the part of its API main.go uses: -name, --name,
// -name=value, -name value, boolean flags without a value, "--" ending the
// flags, the first non-flag argument ending them, -h and -help printing
// the usage, and the same error and usage texts. package flag costs
// 65,536 B of the mips binary (docs/size-budget.md): it formats its usage
// through fmt and reflect and carries every value type (durations,
// floats, text unmarshalers, functions) whether used or not.
type flagSet struct {
	name string
	out  io.Writer
	defs []*flagDef
	args []string
}

// flagValue is flag.Value.
type flagValue interface {
	String() string
	Set(string) error
}

type flagDef struct {
	name, usage string
	value       flagValue
	defValue    string
	zero        string // what String gives for the type's zero value
	typeName    string // the placeholder when the usage has no `name`
	isBool      bool
}

var (
	errFlagHelp  = errors.New("flag: help requested") // flag.ErrHelp
	errFlagParse = errors.New("parse error")
	errFlagRange = errors.New("value out of range")
)

func newFlagSet(name string, out io.Writer) *flagSet {
	return &flagSet{name: name, out: out}
}

func (f *flagSet) define(v flagValue, name, usage, zero, typeName string, isBool bool) {
	f.defs = append(f.defs, &flagDef{name: name, usage: usage, value: v, defValue: v.String(), zero: zero, typeName: typeName, isBool: isBool})
}

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

type boolValue bool

func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errFlagParse
	}
	*b = boolValue(v)
	return nil
}
func (b *boolValue) String() string { return strconv.FormatBool(bool(*b)) }

type intValue int

func (i *intValue) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, strconv.IntSize)
	if err != nil {
		return numError(err)
	}
	*i = intValue(v)
	return nil
}
func (i *intValue) String() string { return strconv.Itoa(int(*i)) }

type uintValue uint

func (i *uintValue) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, strconv.IntSize)
	if err != nil {
		return numError(err)
	}
	*i = uintValue(v)
	return nil
}
func (i *uintValue) String() string { return strconv.FormatUint(uint64(*i), 10) }

// numError turns strconv's errors into flag's.
func numError(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		switch ne.Err {
		case strconv.ErrSyntax:
			return errFlagParse
		case strconv.ErrRange:
			return errFlagRange
		}
	}
	return err
}

func (f *flagSet) StringVar(p *string, name, value, usage string) {
	*p = value
	f.define((*stringValue)(p), name, usage, "", "string", false)
}

func (f *flagSet) String(name, value, usage string) *string {
	p := new(string)
	f.StringVar(p, name, value, usage)
	return p
}

func (f *flagSet) Bool(name string, value bool, usage string) *bool {
	p := new(bool)
	*p = value
	f.define((*boolValue)(p), name, usage, "false", "", true)
	return p
}

func (f *flagSet) Int(name string, value int, usage string) *int {
	p := new(int)
	*p = value
	f.define((*intValue)(p), name, usage, "0", "int", false)
	return p
}

func (f *flagSet) Uint(name string, value uint, usage string) *uint {
	p := new(uint)
	*p = value
	f.define((*uintValue)(p), name, usage, "0", "uint", false)
	return p
}

// Var defines a flag of another type; zero is what its String gives for
// the zero value (flag finds that by reflection). A value with an
// IsBoolFlag method that returns true needs no argument, as in flag.
func (f *flagSet) Var(v flagValue, zero, name, usage string) {
	b, ok := v.(interface{ IsBoolFlag() bool })
	isBool := ok && b.IsBoolFlag()
	typeName := "value"
	if isBool {
		typeName = ""
	}
	f.define(v, name, usage, zero, typeName, isBool)
}

func (f *flagSet) lookup(name string) *flagDef {
	for _, d := range f.defs {
		if d.name == name {
			return d
		}
	}
	return nil
}

// Parse parses the flags at the start of args; the rest are Args.
func (f *flagSet) Parse(args []string) error {
	f.args = args
	for {
		seen, err := f.parseOne()
		if seen {
			continue
		}
		return err
	}
}

func (f *flagSet) parseOne() (bool, error) {
	if len(f.args) == 0 {
		return false, nil
	}
	s := f.args[0]
	if len(s) < 2 || s[0] != '-' {
		return false, nil
	}
	minuses := 1
	if s[1] == '-' {
		minuses++
		if len(s) == 2 { // "--" ends the flags
			f.args = f.args[1:]
			return false, nil
		}
	}
	name := s[minuses:]
	if len(name) == 0 || name[0] == '-' || name[0] == '=' {
		return false, f.failf("bad flag syntax: %s", s)
	}
	f.args = f.args[1:]
	value, hasValue := "", false
	if i := strings.IndexByte(name[1:], '='); i >= 0 {
		name, value, hasValue = name[:i+1], name[i+2:], true
	}
	d := f.lookup(name)
	if d == nil {
		if name == "help" || name == "h" {
			f.usage()
			return false, errFlagHelp
		}
		return false, f.failf("flag provided but not defined: -%s", name)
	}
	if d.isBool {
		if !hasValue {
			if err := d.value.Set("true"); err != nil {
				return false, f.failf("invalid boolean flag %s: %v", name, err)
			}
		} else if err := d.value.Set(value); err != nil {
			return false, f.failf("invalid boolean value %q for -%s: %v", value, name, err)
		}
		return true, nil
	}
	if !hasValue && len(f.args) > 0 {
		value, f.args, hasValue = f.args[0], f.args[1:], true
	}
	if !hasValue {
		return false, f.failf("flag needs an argument: -%s", name)
	}
	if err := d.value.Set(value); err != nil {
		return false, f.failf("invalid value %q for flag -%s: %v", value, name, err)
	}
	return true, nil
}

// failf prints the error and the usage, as flag does.
func (f *flagSet) failf(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(f.out, msg)
	f.usage()
	return errors.New(msg)
}

// usage is flag's default usage: the name, then every flag in
// lexicographical order as PrintDefaults shows it.
func (f *flagSet) usage() {
	var b strings.Builder
	b.WriteString("Usage of " + f.name + ":\n")
	defs := append([]*flagDef(nil), f.defs...)
	sort.Slice(defs, func(i, j int) bool { return defs[i].name < defs[j].name })
	for _, d := range defs {
		n := b.Len()
		b.WriteString("  -" + d.name)
		name, usage := d.typeName, d.usage
		if i := strings.IndexByte(usage, '`'); i >= 0 {
			if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
				name = usage[i+1 : i+1+j]
				usage = usage[:i] + name + usage[i+2+j:]
			}
		}
		if name != "" {
			b.WriteString(" " + name)
		}
		if b.Len()-n <= 4 {
			b.WriteString("\t")
		} else {
			b.WriteString("\n    \t")
		}
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if d.defValue != d.zero {
			if _, ok := d.value.(*stringValue); ok {
				b.WriteString(" (default " + strconv.Quote(d.defValue) + ")")
			} else {
				b.WriteString(" (default " + d.defValue + ")")
			}
		}
		b.WriteString("\n")
	}
	io.WriteString(f.out, b.String())
}

// NArg, Arg and Args are the arguments left after the flags.
func (f *flagSet) NArg() int { return len(f.args) }

func (f *flagSet) Arg(i int) string {
	if i < 0 || i >= len(f.args) {
		return ""
	}
	return f.args[i]
}

func (f *flagSet) Args() []string { return f.args }
