package json

import (
	"io"
	"reflect"
)

// A Decoder reads and decodes JSON values from an input stream, as
// encoding/json's does: it reads ahead, and a syntax or read error stays.
type Decoder struct {
	r         io.Reader
	buf       []byte
	scanp     int   // start of unread data in buf
	scanned   int64 // bytes consumed before buf
	err       error
	useNumber bool

	tokenState int
	tokenStack []int
}

// NewDecoder returns a new decoder that reads from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r}
}

// UseNumber makes the Decoder decode a number into an interface value as a
// Number instead of a float64.
func (dec *Decoder) UseNumber() { dec.useNumber = true }

// Decode reads the next JSON value from its input and stores it in the
// value pointed to by v.
func (dec *Decoder) Decode(v any) error {
	if dec.err != nil {
		return dec.err
	}
	if err := dec.tokenPrepareForDecode(); err != nil {
		return err
	}
	if !dec.tokenValueAllowed() {
		return &SyntaxError{msg: "not at beginning of value", Offset: dec.InputOffset()}
	}
	n, err := dec.readValue()
	if err != nil {
		return err
	}
	d := decodeState{data: dec.buf[dec.scanp : dec.scanp+n], useNumber: dec.useNumber}
	dec.scanp += n
	err = d.unmarshal(v)
	dec.tokenValueEnd()
	return err
}

// InputOffset returns the input stream byte offset of the current decoder
// position.
func (dec *Decoder) InputOffset() int64 {
	return dec.scanned + int64(dec.scanp)
}

// readValue reads one whole JSON value into buf and returns its length
// from scanp. Like encoding/json, a value other than an object or array
// is complete only when the byte after it (or the end of input) is seen.
func (dec *Decoder) readValue() (int, error) {
	var rerr error
	for {
		end, err := scan(dec.buf, dec.scanp, rerr != nil)
		if err == nil {
			c := dec.buf[firstNonSpace(dec.buf, dec.scanp)]
			if end < len(dec.buf) || rerr != nil || c == '{' || c == '[' {
				return end - dec.scanp, nil
			}
		} else if _, ok := err.(*needMore); !ok {
			se := *err.(*SyntaxError)
			se.Offset += dec.scanned
			dec.err = &se
			return 0, dec.err
		}
		if rerr != nil {
			if rerr == io.EOF && nonSpace(dec.buf[dec.scanp:]) {
				rerr = io.ErrUnexpectedEOF
			}
			dec.err = rerr
			return 0, rerr
		}
		rerr = dec.refill()
	}
}

func firstNonSpace(b []byte, i int) int {
	for i < len(b)-1 && isSpace(b[i]) {
		i++
	}
	return i
}

func (dec *Decoder) refill() error {
	if dec.scanp > 0 {
		dec.scanned += int64(dec.scanp)
		n := copy(dec.buf, dec.buf[dec.scanp:])
		dec.buf = dec.buf[:n]
		dec.scanp = 0
	}
	const minRead = 512
	if cap(dec.buf)-len(dec.buf) < minRead {
		nb := make([]byte, len(dec.buf), 2*cap(dec.buf)+minRead)
		copy(nb, dec.buf)
		dec.buf = nb
	}
	n, err := dec.r.Read(dec.buf[len(dec.buf):cap(dec.buf)])
	dec.buf = dec.buf[:len(dec.buf)+n]
	return err
}

func nonSpace(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return true
		}
	}
	return false
}

// Delim is a JSON array or object delimiter: [ ] { or }.
type Delim rune

func (d Delim) String() string { return string(d) }

// Token is a value of one of these types: Delim, bool, float64 (or
// Number), string, nil.
type Token any

const (
	tokenTopValue = iota
	tokenArrayStart
	tokenArrayValue
	tokenArrayComma
	tokenObjectStart
	tokenObjectKey
	tokenObjectColon
	tokenObjectValue
	tokenObjectComma
)

func (dec *Decoder) tokenPrepareForDecode() error {
	switch dec.tokenState {
	case tokenArrayComma:
		c, err := dec.peek()
		if err != nil {
			return err
		}
		if c != ',' {
			return &SyntaxError{"expected comma after array element", dec.InputOffset()}
		}
		dec.scanp++
		dec.tokenState = tokenArrayValue
	case tokenObjectColon:
		c, err := dec.peek()
		if err != nil {
			return err
		}
		if c != ':' {
			return &SyntaxError{"expected colon after object key", dec.InputOffset()}
		}
		dec.scanp++
		dec.tokenState = tokenObjectValue
	}
	return nil
}

func (dec *Decoder) tokenValueAllowed() bool {
	switch dec.tokenState {
	case tokenTopValue, tokenArrayStart, tokenArrayValue, tokenObjectValue:
		return true
	}
	return false
}

func (dec *Decoder) tokenValueEnd() {
	switch dec.tokenState {
	case tokenArrayStart, tokenArrayValue:
		dec.tokenState = tokenArrayComma
	case tokenObjectValue:
		dec.tokenState = tokenObjectComma
	}
}

// Token returns the next JSON token in the input stream; at the end of
// the input it returns nil, io.EOF.
func (dec *Decoder) Token() (Token, error) {
	for {
		c, err := dec.peek()
		if err != nil {
			return nil, err
		}
		switch c {
		case '[', '{':
			if !dec.tokenValueAllowed() {
				return dec.tokenError(c)
			}
			dec.scanp++
			dec.tokenStack = append(dec.tokenStack, dec.tokenState)
			dec.tokenState = tokenArrayStart
			if c == '{' {
				dec.tokenState = tokenObjectStart
			}
			return Delim(c), nil
		case ']', '}':
			if c == ']' && dec.tokenState != tokenArrayStart && dec.tokenState != tokenArrayComma ||
				c == '}' && dec.tokenState != tokenObjectStart && dec.tokenState != tokenObjectComma {
				return dec.tokenError(c)
			}
			dec.scanp++
			dec.tokenState = dec.tokenStack[len(dec.tokenStack)-1]
			dec.tokenStack = dec.tokenStack[:len(dec.tokenStack)-1]
			dec.tokenValueEnd()
			return Delim(c), nil
		case ':':
			if dec.tokenState != tokenObjectColon {
				return dec.tokenError(c)
			}
			dec.scanp++
			dec.tokenState = tokenObjectValue
			continue
		case ',':
			switch dec.tokenState {
			case tokenArrayComma:
				dec.scanp++
				dec.tokenState = tokenArrayValue
				continue
			case tokenObjectComma:
				dec.scanp++
				dec.tokenState = tokenObjectKey
				continue
			}
			return dec.tokenError(c)
		case '"':
			if dec.tokenState == tokenObjectStart || dec.tokenState == tokenObjectKey {
				var x string
				old := dec.tokenState
				dec.tokenState = tokenTopValue
				err := dec.Decode(&x)
				dec.tokenState = old
				if err != nil {
					return nil, err
				}
				dec.tokenState = tokenObjectColon
				return x, nil
			}
		}
		if !dec.tokenValueAllowed() {
			return dec.tokenError(c)
		}
		var x any
		if err := dec.Decode(&x); err != nil {
			return nil, err
		}
		return x, nil
	}
}

func (dec *Decoder) tokenError(c byte) (Token, error) {
	var context string
	switch dec.tokenState {
	case tokenTopValue, tokenArrayStart, tokenArrayValue, tokenObjectValue:
		context = " looking for beginning of value"
	case tokenArrayComma:
		context = " after array element"
	case tokenObjectKey:
		context = " looking for beginning of object key string"
	case tokenObjectColon:
		context = " after object key"
	case tokenObjectComma:
		context = " after object key:value pair"
	}
	return nil, &SyntaxError{"invalid character " + quoteChar(c) + context, dec.InputOffset()}
}

// More reports whether there is another element in the current array or
// object being parsed.
func (dec *Decoder) More() bool {
	c, err := dec.peek()
	return err == nil && c != ']' && c != '}'
}

func (dec *Decoder) peek() (byte, error) {
	var err error
	for {
		for i := dec.scanp; i < len(dec.buf); i++ {
			c := dec.buf[i]
			if isSpace(c) {
				continue
			}
			dec.scanp = i
			return c, nil
		}
		if err != nil {
			return 0, err
		}
		err = dec.refill()
	}
}

// An Encoder writes JSON values to an output stream, each followed by a
// newline.
type Encoder struct {
	w                    io.Writer
	err                  error
	indentPrefix, indent string
}

// NewEncoder returns a new encoder that writes to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: w}
}

// Encode writes the JSON encoding of v to the stream, followed by a
// newline character.
func (enc *Encoder) Encode(v any) error {
	if enc.err != nil {
		return enc.err
	}
	var e encoder
	if err := e.value(reflect.ValueOf(v), 0); err != nil {
		return err
	}
	b := append(e.b, '\n')
	if enc.indentPrefix != "" || enc.indent != "" {
		b = appendIndent(nil, b, enc.indentPrefix, enc.indent)
	}
	if _, err := enc.w.Write(b); err != nil {
		enc.err = err
		return err
	}
	return nil
}

// SetIndent makes the encoder indent each value as Indent would.
func (enc *Encoder) SetIndent(prefix, indent string) {
	enc.indentPrefix = prefix
	enc.indent = indent
}
