package openwrt

import (
	"strconv"
	"strings"
)

// The package has no sentinel errors: callers that need to tell a syntax
// error from a bad value use errors.As with *ParseError or *ConfigError, and
// a missing file keeps its *fs.PathError (errors.Is(err, fs.ErrNotExist)).

// ParseError is a UCI syntax error: the file cannot be read as UCI at all.
// Parsing stops at the first one, as libuci does in strict mode.
type ParseError struct {
	File string // file name as given to ParseUCI
	Line int    // 1-based line of the offending text
	Msg  string
}

// Error returns "FILE:LINE: message".
func (e *ParseError) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// ConfigError is a value in a syntactically valid file that carpd cannot use,
// or a rule of config.Validate that the file breaks.
type ConfigError struct {
	File    string
	Line    int    // 1-based; 0 when no line can be named
	Section string // UCI section name, "" when not about one section
	Option  string // option name, "" when about the section itself
	Msg     string
}

// Error returns "FILE:LINE: option 'NAME': MSG", leaving out the option part
// when Option is empty and the line when Line is 0.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Option != "" {
		b.WriteString("option '")
		b.WriteString(e.Option)
		b.WriteString("': ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
