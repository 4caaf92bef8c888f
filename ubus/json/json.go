// Package jsonx is the part of encoding/json that carpd uses, written to
// produce the same bytes and the same errors, in a fraction of the size:
// encoding/json costs about 190 KB of the stripped mips binary
// (docs/size-budget.md), this package about a third of it.
//
// Its API has encoding/json's names and shapes, so a file moves over by
// its import line alone:
//
//	import json "github.com/carpd/carpd/ubus/json"
//
// (scripts/jsonconv does that for every file of the binary). It is
// reflect-based and covers: Marshal, MarshalIndent, Unmarshal, Valid,
// Compact, Indent; Encoder (Encode, SetIndent) and Decoder (Decode,
// UseNumber, Token, More, InputOffset); RawMessage, Number, Delim,
// Marshaler, Unmarshaler, and encoding.TextMarshaler/TextUnmarshaler.
// Struct fields follow encoding/json's rules: json tags with omitempty,
// omitzero and "-", embedded structs and the rules that hide their
// fields, case-insensitive key matching on decode, unknown keys ignored.
// Maps are written with their keys sorted, strings HTML-safe (<, >, &,
// U+2028 and U+2029 escaped), floats in encoding/json's format, time.Time
// through its own MarshalJSON (RFC 3339 with nanoseconds).
//
// Not supported (carpd uses none of them; the tests in this package check
// everything else against encoding/json byte for byte): the ",string" tag
// option (ignored here), SetEscapeHTML, DisallowUnknownFields, and
// encoding/json's detection of pointer cycles (a cycle here ends with an
// error at 1000 levels of nesting instead of after it, same error type).
//
// Input is never trusted: nesting deeper than 10000 levels is a syntax
// error, as in encoding/json, and the parser does not recurse on input
// that is not valid JSON.
package json

import (
	"encoding"
	"errors"
	"reflect"
	"strconv"
)

// Marshaler is implemented by types that marshal themselves.
type Marshaler interface {
	MarshalJSON() ([]byte, error)
}

// Unmarshaler is implemented by types that unmarshal themselves. The input
// is one valid JSON value, which UnmarshalJSON must copy to keep.
type Unmarshaler interface {
	UnmarshalJSON([]byte) error
}

var (
	marshalerType       = reflect.TypeFor[Marshaler]()
	unmarshalerType     = reflect.TypeFor[Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType          = reflect.TypeFor[Number]()
)

// RawMessage is a raw encoded JSON value: it is copied in verbatim on
// decode and written out (compacted) on encode.
type RawMessage []byte

// MarshalJSON returns m as the JSON encoding of m.
func (m RawMessage) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	return m, nil
}

// UnmarshalJSON sets *m to a copy of data.
func (m *RawMessage) UnmarshalJSON(data []byte) error {
	if m == nil {
		return errors.New("json.RawMessage: UnmarshalJSON on nil pointer")
	}
	*m = append((*m)[0:0], data...)
	return nil
}

// Number is a JSON number literal.
type Number string

// String returns the literal text of the number.
func (n Number) String() string { return string(n) }

// Float64 returns the number as a float64.
func (n Number) Float64() (float64, error) { return strconv.ParseFloat(string(n), 64) }

// Int64 returns the number as an int64.
func (n Number) Int64() (int64, error) { return strconv.ParseInt(string(n), 10, 64) }

// A SyntaxError is a description of a JSON syntax error.
type SyntaxError struct {
	msg    string
	Offset int64 // error occurred after reading Offset bytes
}

func (e *SyntaxError) Error() string { return e.msg }

// An UnmarshalTypeError describes a JSON value that was not appropriate
// for a value of a specific Go type.
type UnmarshalTypeError struct {
	Value  string       // description of JSON value: "bool", "array", "number -5"
	Type   reflect.Type // type of Go value it could not be assigned to
	Offset int64        // error occurred after reading Offset bytes
	Struct string       // name of the struct type containing the field
	Field  string       // the full path from the root to the field
}

func (e *UnmarshalTypeError) Error() string {
	if e.Struct != "" || e.Field != "" {
		return "json: cannot unmarshal " + e.Value + " into Go struct field " + e.Struct + "." + e.Field + " of type " + e.Type.String()
	}
	return "json: cannot unmarshal " + e.Value + " into Go value of type " + e.Type.String()
}

// An InvalidUnmarshalError describes an invalid argument passed to
// Unmarshal (not a non-nil pointer).
type InvalidUnmarshalError struct {
	Type reflect.Type
}

func (e *InvalidUnmarshalError) Error() string {
	if e.Type == nil {
		return "json: Unmarshal(nil)"
	}
	if e.Type.Kind() != reflect.Pointer {
		return "json: Unmarshal(non-pointer " + e.Type.String() + ")"
	}
	return "json: Unmarshal(nil " + e.Type.String() + ")"
}

// An UnsupportedTypeError is returned by Marshal for a value of a type it
// cannot encode (channels, functions, complex numbers).
type UnsupportedTypeError struct {
	Type reflect.Type
}

func (e *UnsupportedTypeError) Error() string {
	return "json: unsupported type: " + e.Type.String()
}

// An UnsupportedValueError is returned by Marshal for a value it cannot
// encode (NaN, ±Inf, too deep a nesting).
type UnsupportedValueError struct {
	Value reflect.Value
	Str   string
}

func (e *UnsupportedValueError) Error() string {
	return "json: unsupported value: " + e.Str
}

// A MarshalerError is an error from a MarshalJSON or MarshalText method.
type MarshalerError struct {
	Type       reflect.Type
	Err        error
	sourceFunc string
}

func (e *MarshalerError) Error() string {
	srcFunc := e.sourceFunc
	if srcFunc == "" {
		srcFunc = "MarshalJSON"
	}
	return "json: error calling " + srcFunc + " for type " + e.Type.String() + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *MarshalerError) Unwrap() error { return e.Err }
