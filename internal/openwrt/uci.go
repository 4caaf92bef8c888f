package openwrt

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// File is a parsed UCI file: libuci's "package".
type File struct {
	// Name is the name given to ParseUCI; a `package` line does not change
	// it.
	Name     string
	Sections []*Section // in file order
}

// Section is one `config <type> ['<name>']` section.
type Section struct {
	Type string
	// Name is the section name, or the generated cfgXXYYYY name when
	// Anonymous is set (see the package documentation).
	Name      string
	Anonymous bool
	Line      int       // line of the (first) config statement
	Options   []*Option // in file order; names are unique
	// Cleared holds the options set to '' (`option name ''`) and the line
	// of the last such statement. libuci drops them, and so does Options
	// (and Format); carpd reads a few as "none" rather than "default".
	Cleared map[string]int
}

// Option is one option, or one list with all its items.
type Option struct {
	Name string
	// Values holds the value of an option (exactly one) or the items of a
	// list (one or more), in file order.
	Values []string
	List   bool
	// Line is the line of the statement that set an option's value, or the
	// line where a list started.
	Line int
	// ValueLines[i] is the line of the statement that supplied Values[i], so
	// a bad list item can be reported where it is.
	ValueLines []int
}

// get returns the section that ref names, or nil. ref is a section name or an
// extended reference as in `uci get carpd.@vhid[0]`: @type[N] is the N-th
// section of that type, @type[-1] the last, and @[N] counts sections of any
// type.
func (f *File) get(ref string) *Section {
	if !strings.HasPrefix(ref, "@") {
		for _, s := range f.Sections {
			if s.Name == ref {
				return s
			}
		}
		return nil
	}
	// Same shape as libuci's uci_lookup_ext_section: '@', a type (may be
	// empty), '[', a decimal index, ']' as the last character.
	typ, idxstr, ok := strings.Cut(ref[1:], "[")
	if !ok || !strings.HasSuffix(idxstr, "]") {
		return nil
	}
	idx, err := strconv.Atoi(strings.TrimSuffix(idxstr, "]"))
	if err != nil || (typ != "" && !validType(typ)) {
		return nil
	}
	var matches []*Section
	for _, s := range f.Sections {
		if typ == "" || s.Type == typ {
			matches = append(matches, s)
		}
	}
	if idx < 0 {
		idx += len(matches)
	}
	if idx < 0 || idx >= len(matches) {
		return nil
	}
	return matches[idx]
}

// Option returns the option called name, or nil.
func (s *Section) Option(name string) *Option {
	for _, o := range s.Options {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// ParseUCI parses a UCI file. name is used for File.Name and in errors. It
// stops at the first syntax error, which is a *ParseError.
func ParseUCI(name string, data []byte) (*File, error) {
	p := &parser{
		name: name, data: data, line: 1,
		f:      &File{Name: name},
		byName: map[string]*Section{},
		opts:   map[optKey]*Option{},
	}
	for p.pos < len(p.data) {
		words, err := p.statement()
		if err != nil {
			return nil, err
		}
		if len(words) > 0 {
			if err := p.exec(words); err != nil {
				return nil, err
			}
		}
	}
	return p.f, nil
}

// parser holds the reading position and the File under construction.
type parser struct {
	name string
	data []byte
	pos  int
	line int

	f      *File
	cur    *Section            // section that option/list add to
	byName map[string]*Section // first section with each name
	opts   map[optKey]*Option  // options by section and name
}

type optKey struct {
	s    *Section
	name string
}

// set is libuci's uci_set for an option while reading a file.
func (p *parser) set(s *Section, name, value string, line int) {
	if value == "" {
		// uci_set with an empty value deletes only after a full lookup,
		// which the file parser never does, so it is a no-op here; only
		// Cleared remembers it.
		if s.Cleared == nil {
			s.Cleared = map[string]int{}
		}
		s.Cleared[name] = line
		return
	}
	o := p.opts[optKey{s, name}]
	switch {
	case o == nil:
		o = &Option{Name: name, Values: []string{value}, Line: line, ValueLines: []int{line}}
		s.Options = append(s.Options, o)
		p.opts[optKey{s, name}] = o
	case !o.List && o.Values[0] == value:
		// Same value: libuci returns early and keeps the old option.
	default:
		// Replaced in place, whether it was an option or a list.
		*o = Option{Name: name, Values: []string{value}, Line: line, ValueLines: []int{line}}
	}
}

// add is libuci's uci_add_list: the value may be empty.
func (p *parser) add(s *Section, name, value string, line int) {
	o := p.opts[optKey{s, name}]
	if o == nil {
		o = &Option{Name: name, Values: []string{value}, List: true, Line: line, ValueLines: []int{line}}
		s.Options = append(s.Options, o)
		p.opts[optKey{s, name}] = o
		return
	}
	// An option becomes a list that starts with its old value.
	o.List = true
	o.Values = append(o.Values, value)
	o.ValueLines = append(o.ValueLines, line)
}

// word is one argument of a statement.
type word struct {
	text string
	line int
	// bare is set when the word had no quotes or backslashes. Like libuci,
	// which finds the keyword with strtok before any unquoting, only a bare
	// word can be a keyword.
	bare bool
}

func (p *parser) errorf(line int, format string, a ...any) error {
	return &ParseError{File: p.name, Line: line, Msg: fmt.Sprintf(format, a...)}
}

// isControl reports the bytes that are never allowed in a file.
func isControl(c byte) bool {
	return c < 0x20 && c != '\t' && c != '\n' && c != '\r'
}

func (p *parser) controlError(c byte) error {
	return p.errorf(p.line, "invalid control character 0x%02x", c)
}

// statement reads the words up to the end of the next statement: a newline,
// a ';' or the end of the file, outside quotes. It returns no words for blank
// and comment lines.
func (p *parser) statement() ([]word, error) {
	var words []word
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; c {
		case ' ', '\t', '\r':
			p.pos++
		case '\n':
			p.pos++
			p.line++
			if len(words) > 0 {
				return words, nil
			}
		case ';':
			if len(words) == 0 {
				// libuci reads a lone ';' as a command and rejects it.
				return nil, p.errorf(p.line, "invalid command \";\"")
			}
			p.pos++
			return words, nil
		case '#':
			// A comment runs to the end of the line; the newline itself ends
			// the statement on the next iteration.
			for p.pos < len(p.data) && p.data[p.pos] != '\n' {
				if isControl(p.data[p.pos]) {
					return nil, p.controlError(p.data[p.pos])
				}
				p.pos++
			}
		default:
			w, err := p.word()
			if err != nil {
				return nil, err
			}
			words = append(words, w)
		}
	}
	return words, nil
}

// word reads one word: bare characters, quoted pieces and escapes, glued
// together until whitespace, ';' or '#' outside quotes (libuci parse_str).
func (p *parser) word() (word, error) {
	w := word{line: p.line, bare: true}
	var b []byte
	for p.pos < len(p.data) {
		var err error
		switch c := p.data[p.pos]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '#':
			w.text = string(b)
			return w, nil
		case c == '\'':
			w.bare = false
			b, err = p.singleQuoted(b)
		case c == '"':
			w.bare = false
			b, err = p.doubleQuoted(b)
		case c == '\\':
			w.bare = false
			b, err = p.backslash(b)
		case isControl(c):
			err = p.controlError(c)
		default:
			b = append(b, c)
			p.pos++
		}
		if err != nil {
			return word{}, err
		}
	}
	w.text = string(b)
	return w, nil
}

// singleQuoted appends the text up to the closing quote. Nothing is special
// inside single quotes, not even a backslash, so a writer puts a quote in a
// value by closing the quotes, adding an escaped quote and reopening them.
func (p *parser) singleQuoted(b []byte) ([]byte, error) {
	start := p.line
	p.pos++
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '\'':
			p.pos++
			return b, nil
		case c == '\n':
			p.line++
		case isControl(c):
			return nil, p.controlError(c)
		}
		b = append(b, c)
		p.pos++
	}
	return nil, p.errorf(start, "unterminated ' quote (end of file reached)")
}

// doubleQuoted appends the text up to the closing quote, with backslash
// escapes.
func (p *parser) doubleQuoted(b []byte) ([]byte, error) {
	start := p.line
	p.pos++
	for p.pos < len(p.data) {
		var err error
		switch c := p.data[p.pos]; {
		case c == '"':
			p.pos++
			return b, nil
		case c == '\\':
			b, err = p.backslash(b)
		case c == '\n':
			p.line++
			b = append(b, c)
			p.pos++
		case isControl(c):
			err = p.controlError(c)
		default:
			b = append(b, c)
			p.pos++
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, p.errorf(start, "unterminated \" quote (end of file reached)")
}

// backslash handles a backslash outside single quotes, as libuci's
// parse_backslash: before a line end (LF or CRLF) it joins the next line;
// otherwise the next character is taken literally (no C escapes: \n is "n").
// A backslash at the very end of the file vanishes.
func (p *parser) backslash(b []byte) ([]byte, error) {
	p.pos++
	rest := p.data[p.pos:]
	switch {
	case len(rest) == 0:
		return b, nil
	case rest[0] == '\n':
		p.pos++
		p.line++
		return b, nil
	case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
		p.pos += 2
		p.line++
		return b, nil
	case isControl(rest[0]):
		return nil, p.controlError(rest[0])
	}
	p.pos++
	return append(b, rest[0]), nil
}

// keyword maps a command word to its statement, accepting libuci's
// one-letter abbreviations.
func keyword(w word) string {
	if !w.bare {
		return ""
	}
	switch w.text {
	case "p", "package":
		return "package"
	case "c", "config":
		return "config"
	case "o", "option":
		return "option"
	case "l", "list":
		return "list"
	}
	return ""
}

// exec applies one statement, checking in libuci's order.
func (p *parser) exec(words []word) error {
	cmd, args := words[0], words[1:]
	kw := keyword(cmd)
	switch kw {
	case "package":
		if len(args) == 0 || args[0].text == "" {
			return p.errorf(cmd.line, "package: missing name")
		}
		if !validPackage(args[0].text) {
			return p.errorf(args[0].line, "package: invalid name %q: only A-Z, a-z, 0-9, _ and - are allowed", args[0].text)
		}
	case "config":
		if len(args) == 0 || args[0].text == "" {
			return p.errorf(cmd.line, "config: missing section type")
		}
		if !validType(args[0].text) {
			return p.errorf(args[0].line, "config: invalid section type %q: only printable ASCII without spaces is allowed", args[0].text)
		}
		if len(args) > 1 && args[1].text != "" && !validName(args[1].text) {
			return p.errorf(args[1].line, "config: invalid section name %q: only A-Z, a-z, 0-9 and _ are allowed", args[1].text)
		}
	case "option", "list":
		if p.cur == nil {
			return p.errorf(cmd.line, "%s before the first config line", kw)
		}
		if len(args) == 0 || args[0].text == "" {
			return p.errorf(cmd.line, "%s: missing name", kw)
		}
		if !validName(args[0].text) {
			return p.errorf(args[0].line, "%s: invalid name %q: only A-Z, a-z, 0-9 and _ are allowed", kw, args[0].text)
		}
	default:
		return p.errorf(cmd.line, "invalid command %q", cmd.text)
	}
	if len(args) > 2 || (kw == "package" && len(args) > 1) {
		extra := args[2:]
		if kw == "package" {
			extra = args[1:]
		}
		return p.errorf(extra[0].line, "%s: too many arguments (quote a value that contains spaces)", kw)
	}

	var name, value string
	if len(args) > 1 {
		value = args[1].text
	}
	if len(args) > 0 {
		name = args[0].text
	}
	switch kw {
	case "config":
		return p.config(cmd.line, name, value)
	case "option":
		p.set(p.cur, name, value, cmd.line)
	case "list":
		p.add(p.cur, name, value, cmd.line)
	}
	// "package" only names the config when importing a stream; a file's name
	// comes from its path, so libuci ignores it there and so do we.
	return nil
}

// config opens a section of type typ; name is "" for an anonymous one.
func (p *parser) config(line int, typ, name string) error {
	if name != "" {
		if s := p.byName[name]; s != nil {
			if s.Type != typ {
				return p.errorf(line, "config: section %q was declared with type %q at line %d; a section of type %q cannot reuse its name", name, s.Type, s.Line, typ)
			}
			// Same name and type: libuci's uci_set finds the section and
			// the options that follow are added to it.
			p.cur = s
			return nil
		}
	}
	s := &Section{Type: typ, Name: name, Line: line}
	p.f.Sections = append(p.f.Sections, s)
	if name == "" {
		s.Anonymous = true
		s.Name = anonymousName(len(p.f.Sections), typ)
	}
	if p.byName[s.Name] == nil {
		p.byName[s.Name] = s
	}
	p.cur = s
	return nil
}

// anonymousName is libuci's uci_fixup_section at the time uci_add_section
// calls it (before any option exists): the section count, then the djb hash
// of the type. n is 1-based; %02x grows past two digits after 255 sections,
// as in libuci.
func anonymousName(n int, typ string) string {
	h := uint32(5381)
	for i := 0; i < len(typ); i++ {
		h = h*33 + uint32(typ[i]) // types are ASCII, so C's char sign does not matter
	}
	h &= 0x7fffffff
	return fmt.Sprintf("cfg%02x%04x", n, h%(1<<16))
}

// validName is uci_validate_name: section and option names.
func validName(s string) bool {
	return validStr(s, false, false)
}

// validType is uci_validate_type: printable ASCII except space.
func validType(s string) bool {
	return validStr(s, true, false)
}

// validPackage is uci_validate_package: a name that may also contain '-'.
func validPackage(s string) bool {
	return validStr(s, false, true)
}

func validStr(s string, typ, pkg bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case c == '-' && pkg:
		case typ && c >= 33 && c <= 126:
		default:
			return false
		}
	}
	return true
}

// format writes the file as `uci commit` does (libuci uci_export_package
// without the package header): every section preceded by a blank line,
// options indented by a tab, section names and values in single quotes, and
// a quote in a value written as close quote, escaped quote, open quote:
//
//	config vhid 'lan'
//		option password 'it'\''s'
//
// Anonymous sections are written without a name. ParseUCI reads the result
// back to the same File, line numbers aside.
//
// One difference from libuci: a section type is quoted when it contains a
// character that would not survive being read back bare (' " \ # ;); libuci
// writes the type bare and so corrupts such types.
func (f *File) format() []byte {
	var b bytes.Buffer
	for _, s := range f.Sections {
		b.WriteString("\nconfig ")
		if bareType(s.Type) {
			b.WriteString(s.Type)
		} else {
			writeQuoted(&b, s.Type)
		}
		if !s.Anonymous {
			b.WriteByte(' ')
			writeQuoted(&b, s.Name)
		}
		b.WriteByte('\n')
		for _, o := range s.Options {
			kw, values := "\tlist ", o.Values
			if !o.List {
				// An option holds one value; an empty one would be dropped
				// when read back, exactly as libuci drops it.
				if len(values) == 0 || values[0] == "" {
					continue
				}
				kw, values = "\toption ", values[:1]
			}
			for _, v := range values {
				b.WriteString(kw)
				b.WriteString(o.Name)
				b.WriteByte(' ')
				writeQuoted(&b, v)
				b.WriteByte('\n')
			}
		}
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// writeQuoted is libuci's uci_escape inside single quotes.
func writeQuoted(b *bytes.Buffer, s string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(s, "'", `'\''`))
	b.WriteByte('\'')
}

// bareType reports whether a section type reads back unchanged unquoted.
func bareType(s string) bool {
	return s != "" && !strings.ContainsAny(s, "'\"\\#; \t\r\n")
}
