package blob

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/carpd/carpd/ubus/json"
)

// FromJSON encodes a JSON object as blobmsg table members, the payload of a
// ubus DATA attribute, exactly as libubox's blobmsg_add_json_element does
// (docs/ubus-protocol.md#blob-and-blobmsg):
//
//	object  → TABLE          array        → ARRAY
//	string  → STRING         true/false   → INT8 (BOOL)
//	integer → INT32 if it fits in int32, else INT64
//	number with '.', 'e' or 'E' → DOUBLE
//	null    → UNSPEC
//
// Member order is kept, so the bytes match what `ubus call`, `ubus send` and
// rpcd produce for the same text. Integers beyond int64 saturate, as json-c's
// json_object_get_int64 does. Empty input and "null" give the empty table (no
// arguments); any other non-object is an error.
func FromJSON(j []byte) ([]byte, error) {
	dec := newJSONDecoder(j)
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blob: from JSON: %w", err)
	}
	e := NewEncoder()
	switch tok {
	case nil:
	case json.Delim('{'):
		if err := e.jsonMembers(dec, 0); err != nil {
			return nil, fmt.Errorf("blob: from JSON: %w", err)
		}
	default:
		return nil, fmt.Errorf("blob: from JSON: %w", errNotObject)
	}
	if err := jsonEOF(dec); err != nil {
		return nil, err
	}
	return e.Encode()
}

// JSON appends one attribute holding the JSON value v, converted as in
// FromJSON: an object becomes a TABLE named name, a string a STRING, and so
// on.
func (e *Encoder) JSON(name string, v []byte) {
	if e.err != nil {
		return
	}
	dec := newJSONDecoder(v)
	if err := e.jsonValue(dec, name, 0); err != nil {
		e.err = fmt.Errorf("blob: from JSON: %w", err)
		return
	}
	if err := jsonEOF(dec); err != nil {
		e.err = err
	}
}

func newJSONDecoder(j []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	return dec
}

// jsonEOF fails if anything but white space follows the value.
func jsonEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("blob: from JSON: trailing data after the value")
	}
	return nil
}

// jsonValue reads one JSON value from dec and appends it as name.
func (e *Encoder) jsonValue(dec *json.Decoder, name string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return errDepth
		}
		switch t {
		case '{':
			e.Table(name, func(ne *Encoder) error { return ne.jsonMembers(dec, depth+1) })
		case '[':
			e.Array(name, func(ne *Encoder) error {
				for dec.More() {
					if err := ne.jsonValue(dec, "", depth+1); err != nil {
						return err
					}
				}
				_, err := dec.Token() // ']'
				return err
			})
		default: // json.Decoder never returns a closing delimiter here
			return fmt.Errorf("unexpected %v", t)
		}
	case string:
		e.String(name, t)
	case bool:
		e.Bool(name, t)
	case nil:
		e.Unspec(name)
	case json.Number:
		e.jsonNumber(name, string(t))
	}
	return e.err
}

// jsonMembers reads object members up to and including the closing '}'.
func (e *Encoder) jsonMembers(dec *json.Decoder, depth int) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string) // json.Decoder guarantees a string key
		if err := e.jsonValue(dec, key, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// jsonNumber mirrors json-c's typing: a literal without fraction or exponent
// is json_type_int, which blobmsg_add_json_element narrows:
//
//	case json_type_int: {
//		int64_t i64 = json_object_get_int64(obj);
//		if (i64 >= INT32_MIN && i64 <= INT32_MAX)
//			blobmsg_add_u32(b, name, (uint32_t)i64);
//		else
//			blobmsg_add_u64(b, name, (uint64_t)i64);
func (e *Encoder) jsonNumber(name, s string) {
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil { // out of range: ParseInt saturates like json-c
			if !errors.Is(err, strconv.ErrRange) {
				e.err = fmt.Errorf("blob: JSON number %q: %w", s, err)
				return
			}
		}
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			e.Int32(name, int32(i))
		} else {
			e.Int64(name, i)
		}
		return
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // ±Inf on overflow, like strtod
		e.err = fmt.Errorf("blob: JSON number %q: %w", s, err)
		return
	}
	e.Float(name, f)
}

// ToJSON formats blobmsg table members (a DATA payload) as a compact JSON
// object, mirroring libubox's blobmsg_format_json: member order is kept
// (duplicate names too), INT8 prints as true/false, INT16/32/64 as signed
// integers, UNSPEC as null, array member names are ignored. Differences,
// all to keep the output valid JSON that FromJSON maps back to the same
// types: doubles print in shortest round-trip form with a ".0" added to
// integral values (C prints "%lf"), NaN and ±Inf print as null (C prints
// "nan"), and invalid UTF-8 becomes U+FFFD.
func ToJSON(b []byte) ([]byte, error) {
	out, err := appendTable(nil, NewDecoder(b))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendTable appends the members d visits as a JSON object.
func appendTable(out []byte, d *Decoder) ([]byte, error) {
	out = append(out, '{')
	for first := true; d.Next(); first = false {
		if !first {
			out = append(out, ',')
		}
		out = appendJSONString(out, d.Name())
		out = append(out, ':')
		out = appendValue(out, d)
	}
	return append(out, '}'), d.Err()
}

// appendArray appends the members d visits as a JSON array.
func appendArray(out []byte, d *Decoder) ([]byte, error) {
	out = append(out, '[')
	for first := true; d.Next(); first = false {
		if !first {
			out = append(out, ',')
		}
		out = appendValue(out, d)
	}
	return append(out, ']'), d.Err()
}

// appendValue appends the current attribute's value; errors stick in d.
func appendValue(out []byte, d *Decoder) []byte {
	switch d.Type() {
	case TypeTable:
		d.Table(func(nd *Decoder) (err error) {
			out, err = appendTable(out, nd)
			return err
		})
	case TypeArray:
		d.Array(func(nd *Decoder) (err error) {
			out, err = appendArray(out, nd)
			return err
		})
	case TypeString:
		out = appendJSONString(out, d.String())
	case TypeInt64, TypeInt32, TypeInt16:
		out = strconv.AppendInt(out, d.Int(), 10)
	case TypeInt8:
		out = strconv.AppendBool(out, d.Bool())
	case TypeDouble:
		out = appendJSONFloat(out, d.Float())
	default: // TypeUnspec; Next rejected unknown types
		out = append(out, "null"...)
	}
	return out
}

// appendJSONFloat formats like encoding/json, but keeps a ".0" on integral
// values so that the number stays a DOUBLE when read back.
func appendJSONFloat(out []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(out, "null"...)
	}
	start := len(out)
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(out, f, 'e', -1, 64)
	}
	out = strconv.AppendFloat(out, f, 'f', -1, 64)
	if !bytes.ContainsAny(out[start:], ".e") {
		out = append(out, ".0"...)
	}
	return out
}

// appendJSONString appends s as a JSON string, escaping what
// blobmsg_format_string escapes (\b \n \t \r " \\ and other control
// characters as \u00XX); invalid UTF-8 becomes U+FFFD.
func appendJSONString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				out = append(out, '\\', c)
			case c == '\n':
				out = append(out, '\\', 'n')
			case c == '\r':
				out = append(out, '\\', 'r')
			case c == '\t':
				out = append(out, '\\', 't')
			case c == '\b':
				out = append(out, '\\', 'b')
			case c < 0x20:
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\ufffd"...)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return append(out, '"')
}

// Marshal encodes v as blobmsg table members by way of encoding/json and
// FromJSON, so struct tags, field order and json.Marshaler all apply. v must
// encode to a JSON object (or null).
func Marshal(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("blob: marshal: %w", err)
	}
	return FromJSON(j)
}

// Unmarshal decodes blobmsg table members into v by way of ToJSON and
// encoding/json, with its usual rules: unknown members are ignored (so the
// `ubus_rpc_session` argument rpcd adds does no harm), numbers in an `any`
// become float64, booleans decode from INT8.
func Unmarshal(b []byte, v any) error {
	j, err := ToJSON(b)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(j, v); err != nil {
		return fmt.Errorf("blob: unmarshal: %w", err)
	}
	return nil
}
