package json

import "strconv"

// maxDepth is encoding/json's limit on nesting: a deeper array or object
// is a syntax error.
const maxDepth = 10000

// needMore is scan's answer when data ends inside the value (or, with eof
// unset, right after a number). context is encoding/json's complaint when
// the input really ends there: its scanner is fed a space at the end, so
// "tru" is "invalid character ' ' in literal true (expecting 'e')", and
// "[1" just "unexpected end of JSON input". It never leaves this package.
type needMore struct{ context string }

func (e *needMore) Error() string { return "unexpected end of JSON input" }

var errNeedMore = &needMore{}

// eofError is the error for input that ends where scan returned e.
func eofError(e *needMore, n int) error {
	if e.context != "" {
		return syntaxErr(' ', n, e.context)
	}
	return &SyntaxError{msg: "unexpected end of JSON input", Offset: int64(n)}
}

func isSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n')
}

// quoteChar formats c as encoding/json does in its error messages.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

func syntaxErr(c byte, i int, context string) error {
	return &SyntaxError{msg: "invalid character " + quoteChar(c) + " " + context, Offset: int64(i + 1)}
}

// scanner states between tokens.
const (
	stBeginValue        = iota // a value must start
	stBeginValueOrEmpty        // after '[': a value or ']'
	stBeginKeyOrEmpty          // after '{': a key or '}'
	stBeginKey                 // after ',' in an object
	stAfterKey                 // after a key: ':'
	stEndValue                 // after a value
)

// scan checks the one JSON value that starts at data[i] (after white
// space) and returns the index just past it, with encoding/json's syntax
// errors. If data ends before the value does, it returns a *needMore; so it
// does right after a number unless eof says no more data follows. The
// nesting is kept in a stack, not on the Go stack.
func scan(data []byte, i int, eof bool) (int, error) {
	var stack []byte // '{' or '['
	state := stBeginValue
	for {
		if state == stEndValue && len(stack) == 0 {
			return i, nil
		}
		if i >= len(data) {
			return i, errNeedMore
		}
		c := data[i]
		if isSpace(c) {
			i++
			continue
		}
		switch state {
		case stBeginValueOrEmpty:
			if c == ']' {
				stack = stack[:len(stack)-1]
				state = stEndValue
				i++
				continue
			}
			state = stBeginValue
			continue
		case stBeginKeyOrEmpty:
			if c == '}' {
				stack = stack[:len(stack)-1]
				state = stEndValue
				i++
				continue
			}
			fallthrough
		case stBeginKey:
			if c != '"' {
				return i, syntaxErr(c, i, "looking for beginning of object key string")
			}
			j, err := scanString(data, i, eof)
			if err != nil {
				return j, err
			}
			i = j
			state = stAfterKey
		case stAfterKey:
			if c != ':' {
				return i, syntaxErr(c, i, "after object key")
			}
			i++
			state = stBeginValue
		case stEndValue:
			if stack[len(stack)-1] == '{' {
				switch c {
				case ',':
					state = stBeginKey
				case '}':
					stack = stack[:len(stack)-1]
				default:
					return i, syntaxErr(c, i, "after object key:value pair")
				}
			} else {
				switch c {
				case ',':
					state = stBeginValue
				case ']':
					stack = stack[:len(stack)-1]
				default:
					return i, syntaxErr(c, i, "after array element")
				}
			}
			i++
		case stBeginValue:
			switch {
			case c == '{' || c == '[':
				stack = append(stack, c)
				if len(stack) > maxDepth {
					return i, syntaxErr(c, i, "exceeded max depth")
				}
				state = stBeginKeyOrEmpty
				if c == '[' {
					state = stBeginValueOrEmpty
				}
				i++
				continue
			case c == '"':
				j, err := scanString(data, i, eof)
				if err != nil {
					return j, err
				}
				i = j
			case c == '-' || '0' <= c && c <= '9':
				j, err := scanNumber(data, i, eof)
				if err != nil {
					return j, err
				}
				i = j
			case c == 't' || c == 'f' || c == 'n':
				j, err := scanLiteral(data, i, eof)
				if err != nil {
					return j, err
				}
				i = j
			default:
				return i, syntaxErr(c, i, "looking for beginning of value")
			}
			state = stEndValue
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanString checks the string that starts at data[i] == '"'.
func scanString(data []byte, i int, eof bool) (int, error) {
	for i++; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return i, syntaxErr(c, i, "in string literal")
		case c == '\\':
			i++
			if i >= len(data) {
				return i, &needMore{"in string escape code"}
			}
			switch data[i] {
			case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
			case 'u':
				for k := 0; k < 4; k++ {
					i++
					if i >= len(data) {
						return i, &needMore{"in \\u hexadecimal character escape"}
					}
					if !isHex(data[i]) {
						return i, syntaxErr(data[i], i, "in \\u hexadecimal character escape")
					}
				}
			default:
				return i, syntaxErr(data[i], i, "in string escape code")
			}
		}
	}
	return i, errNeedMore
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber checks the number that starts at data[i]. The byte after it
// must be seen (or eof) to know it has ended.
func scanNumber(data []byte, i int, eof bool) (int, error) {
	more := func(context string) (int, error) { return len(data), &needMore{context} }
	if data[i] == '-' {
		i++
		if i >= len(data) {
			return more("in numeric literal")
		}
		if !isDigit(data[i]) {
			return i, syntaxErr(data[i], i, "in numeric literal")
		}
	}
	if data[i] == '0' {
		i++
	} else {
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i >= len(data) {
		if eof {
			return i, nil
		}
		return more("")
	}
	if data[i] == '.' {
		i++
		if i >= len(data) {
			return more("after decimal point in numeric literal")
		}
		if !isDigit(data[i]) {
			return i, syntaxErr(data[i], i, "after decimal point in numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
		if i >= len(data) {
			if eof {
				return i, nil
			}
			return more("")
		}
	}
	if c := data[i]; c == 'e' || c == 'E' {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return more("in exponent of numeric literal")
		}
		if !isDigit(data[i]) {
			return i, syntaxErr(data[i], i, "in exponent of numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
		if i >= len(data) && !eof {
			return more("")
		}
	}
	return i, nil
}

// scanLiteral checks true, false or null at data[i].
func scanLiteral(data []byte, i int, eof bool) (int, error) {
	var lit string
	switch data[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	for k := 1; k < len(lit); k++ {
		j := i + k
		if j >= len(data) {
			return j, &needMore{"in literal " + lit + " (expecting " + quoteChar(lit[k]) + ")"}
		}
		if data[j] != lit[k] {
			return j, syntaxErr(data[j], j, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), nil
}

// checkValid reports whether data is one JSON value with only white space
// around it, with encoding/json's errors.
func checkValid(data []byte) error {
	i, err := scan(data, 0, true)
	if nm, ok := err.(*needMore); ok {
		return eofError(nm, len(data))
	}
	if err != nil {
		return err
	}
	for ; i < len(data); i++ {
		if !isSpace(data[i]) {
			return syntaxErr(data[i], i, "after top-level value")
		}
	}
	return nil
}

// Valid reports whether data is a valid JSON encoding.
func Valid(data []byte) bool {
	return checkValid(data) == nil
}
