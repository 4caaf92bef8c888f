package json

import (
	"bytes"
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Marshal returns the JSON encoding of v, as encoding/json.Marshal does.
func Marshal(v any) ([]byte, error) {
	var e encoder
	if err := e.value(reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	return e.b, nil
}

// MarshalIndent is Marshal followed by Indent.
func MarshalIndent(v any, prefix, indent string) ([]byte, error) {
	b, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	return appendIndent(nil, b, prefix, indent), nil
}

// maxEncodeDepth ends the encoding of a pointer cycle (encoding/json
// detects cycles after 1000 levels; carpd's values are trees).
const maxEncodeDepth = 1000

type encoder struct {
	b []byte
}

var isZeroerType = reflect.TypeFor[interface{ IsZero() bool }]()

// value appends v. Addressable values may use pointer-receiver
// MarshalJSON/MarshalText methods, as in encoding/json.
func (e *encoder) value(v reflect.Value, depth int) error {
	if !v.IsValid() {
		e.b = append(e.b, "null"...)
		return nil
	}
	if depth > maxEncodeDepth {
		return &UnsupportedValueError{Value: v, Str: "encountered a cycle via " + v.Type().String()}
	}
	t := v.Type()
	ptr := t.Kind() == reflect.Pointer
	switch {
	case !ptr && v.CanAddr() && reflect.PointerTo(t).Implements(marshalerType):
		return e.marshaler(v.Addr(), t)
	case t.Implements(marshalerType):
		if (ptr || t.Kind() == reflect.Interface) && v.IsNil() {
			e.b = append(e.b, "null"...)
			return nil
		}
		return e.marshaler(v, t)
	case !ptr && v.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType):
		return e.textMarshaler(v.Addr(), t)
	case t.Implements(textMarshalerType):
		if (ptr || t.Kind() == reflect.Interface) && v.IsNil() {
			e.b = append(e.b, "null"...)
			return nil
		}
		return e.textMarshaler(v, t)
	}
	switch t.Kind() {
	case reflect.Bool:
		e.b = strconv.AppendBool(e.b, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.b = strconv.AppendInt(e.b, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.b = strconv.AppendUint(e.b, v.Uint(), 10)
	case reflect.Float32:
		return e.float(v, 32)
	case reflect.Float64:
		return e.float(v, 64)
	case reflect.String:
		if t == numberType {
			s := v.String()
			if s == "" {
				s = "0"
			}
			if !isValidNumber(s) {
				return fmt.Errorf("json: invalid number literal %q", s)
			}
			e.b = append(e.b, s...)
			return nil
		}
		e.b = appendString(e.b, v.String())
	case reflect.Interface:
		if v.IsNil() {
			e.b = append(e.b, "null"...)
			return nil
		}
		return e.value(v.Elem(), depth+1)
	case reflect.Pointer:
		if v.IsNil() {
			e.b = append(e.b, "null"...)
			return nil
		}
		return e.value(v.Elem(), depth+1)
	case reflect.Struct:
		return e.structValue(v, depth)
	case reflect.Map:
		return e.mapValue(v, depth)
	case reflect.Slice:
		if v.IsNil() {
			e.b = append(e.b, "null"...)
			return nil
		}
		if et := reflect.PointerTo(t.Elem()); t.Elem().Kind() == reflect.Uint8 &&
			!et.Implements(marshalerType) && !et.Implements(textMarshalerType) {
			e.b = append(e.b, '"')
			e.b = appendBase64(e.b, v.Bytes())
			e.b = append(e.b, '"')
			return nil
		}
		return e.array(v, depth)
	case reflect.Array:
		return e.array(v, depth)
	default:
		return &UnsupportedTypeError{Type: t}
	}
	return nil
}

func (e *encoder) marshaler(v reflect.Value, t reflect.Type) error {
	m, _ := v.Interface().(Marshaler)
	b, err := m.MarshalJSON()
	if err == nil {
		e.b, err = appendCompact(e.b, b)
	}
	if err != nil {
		return &MarshalerError{Type: t, Err: err, sourceFunc: "MarshalJSON"}
	}
	return nil
}

func (e *encoder) textMarshaler(v reflect.Value, t reflect.Type) error {
	m, _ := v.Interface().(encoding.TextMarshaler)
	b, err := m.MarshalText()
	if err != nil {
		return &MarshalerError{Type: t, Err: err, sourceFunc: "MarshalText"}
	}
	e.b = appendString(e.b, string(b))
	return nil
}

func (e *encoder) float(v reflect.Value, bits int) error {
	f := v.Float()
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return &UnsupportedValueError{Value: v, Str: strconv.FormatFloat(f, 'g', -1, bits)}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b := strconv.AppendFloat(e.b, f, format, -1, bits)
	if format == 'e' { // e-09 → e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	e.b = b
	return nil
}

func (e *encoder) array(v reflect.Value, depth int) error {
	e.b = append(e.b, '[')
	for i, n := 0, v.Len(); i < n; i++ {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if err := e.value(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	e.b = append(e.b, ']')
	return nil
}

func (e *encoder) structValue(v reflect.Value, depth int) error {
	e.b = append(e.b, '{')
	first := true
FieldLoop:
	for i := range cachedFields(v.Type()).list {
		f := &cachedFields(v.Type()).list[i]
		fv := v
		for _, x := range f.index {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue FieldLoop
				}
				fv = fv.Elem()
			}
			fv = fv.Field(x)
		}
		if f.omitEmpty && isEmptyValue(fv) || f.omitZero && isZeroField(f, fv) {
			continue
		}
		if !first {
			e.b = append(e.b, ',')
		}
		first = false
		e.b = append(e.b, f.nameKey...)
		if err := e.value(fv, depth+1); err != nil {
			return err
		}
	}
	e.b = append(e.b, '}')
	return nil
}

func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZeroField is omitzero's test: the type's IsZero method if it has one,
// else the zero value.
func isZeroField(f *field, v reflect.Value) bool {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return v.IsNil() || v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() ||
			v.Interface().(interface{ IsZero() bool }).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(interface{ IsZero() bool }).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(interface{ IsZero() bool }).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		if !v.CanAddr() {
			v2 := reflect.New(t).Elem()
			v2.Set(v)
			v = v2
		}
		return v.Addr().Interface().(interface{ IsZero() bool }).IsZero()
	}
	return v.IsZero()
}

func (e *encoder) mapValue(v reflect.Value, depth int) error {
	if v.IsNil() {
		e.b = append(e.b, "null"...)
		return nil
	}
	kt := v.Type().Key()
	switch kt.Kind() {
	case reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
	default:
		if !kt.Implements(textMarshalerType) {
			return &UnsupportedTypeError{Type: v.Type()}
		}
	}
	type kv struct {
		key string
		v   reflect.Value
	}
	kvs := make([]kv, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k := it.Key()
		var key string
		switch {
		case k.Kind() == reflect.String:
			key = k.String()
		case kt.Implements(textMarshalerType):
			if k.Kind() == reflect.Pointer && k.IsNil() {
				break
			}
			b, err := k.Interface().(encoding.TextMarshaler).MarshalText()
			if err != nil {
				return fmt.Errorf("json: encoding error for type %q: %q", v.Type().String(), err.Error())
			}
			key = string(b)
		case k.CanInt():
			key = strconv.FormatInt(k.Int(), 10)
		default:
			key = strconv.FormatUint(k.Uint(), 10)
		}
		kvs = append(kvs, kv{key, it.Value()})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].key < kvs[j].key })
	e.b = append(e.b, '{')
	for i, p := range kvs {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendString(e.b, p.key)
		e.b = append(e.b, ':')
		if err := e.value(p.v, depth+1); err != nil {
			return err
		}
	}
	e.b = append(e.b, '}')
	return nil
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, HTML-safe, as encoding/json
// does: <, > and & as \u003c, \u003e, \u0026, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD. It takes a string only (a MarshalText result is
// converted): a second instantiation for []byte would cost 3 KB of MIPS code.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		r, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const base64Std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// appendBase64 is base64.StdEncoding (padded), as encoding/json writes
// []byte.
func appendBase64(dst, src []byte) []byte {
	for len(src) >= 3 {
		v := uint(src[0])<<16 | uint(src[1])<<8 | uint(src[2])
		dst = append(dst, base64Std[v>>18&63], base64Std[v>>12&63], base64Std[v>>6&63], base64Std[v&63])
		src = src[3:]
	}
	switch len(src) {
	case 1:
		v := uint(src[0]) << 16
		dst = append(dst, base64Std[v>>18&63], base64Std[v>>12&63], '=', '=')
	case 2:
		v := uint(src[0])<<16 | uint(src[1])<<8
		dst = append(dst, base64Std[v>>18&63], base64Std[v>>12&63], base64Std[v>>6&63], '=')
	}
	return dst
}

// appendCompact appends src, a MarshalJSON result, without white space and
// HTML-safe, after checking that it is one valid value.
func appendCompact(dst, src []byte) ([]byte, error) {
	if err := checkValid(src); err != nil {
		return dst, err
	}
	inStr := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if !inStr && isSpace(c) {
			continue
		}
		switch {
		case c == '"' && !inStr:
			inStr = true
		case inStr && c == '\\':
			dst = append(dst, c, src[i+1])
			i++
			continue
		case inStr && c == '"':
			inStr = false
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			continue
		case c == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8:
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[src[i+2]&0xF])
			i += 2
			continue
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// Indent appends to dst an indented form of the JSON-encoded src, as
// encoding/json.Indent does for compact input.
func Indent(dst *bytes.Buffer, src []byte, prefix, indent string) error {
	if err := checkValid(src); err != nil {
		return err
	}
	dst.Write(appendIndent(nil, src, prefix, indent))
	return nil
}

// appendIndent indents src, valid JSON: each element and member on a line
// of its own, "key": value, empty objects and arrays kept as {} and [],
// anything after the top-level value copied.
func appendIndent(dst, src []byte, prefix, indent string) []byte {
	newline := func(depth int) {
		dst = append(dst, '\n')
		dst = append(dst, prefix...)
		for range depth {
			dst = append(dst, indent...)
		}
	}
	end, _ := scan(src, 0, true)
	depth := 0
	needIndent := false
	inStr := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if i >= end {
			dst = append(dst, c)
			continue
		}
		if inStr {
			dst = append(dst, c)
			if c == '\\' {
				i++
				dst = append(dst, src[i])
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		if isSpace(c) {
			continue
		}
		if needIndent && c != '}' && c != ']' {
			needIndent = false
			depth++
			newline(depth)
		}
		switch c {
		case '"':
			inStr = true
			dst = append(dst, c)
		case '{', '[':
			needIndent = true
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline(depth)
		case ':':
			dst = append(dst, c, ' ')
		case '}', ']':
			if needIndent {
				needIndent = false
			} else {
				depth--
				newline(depth)
			}
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// isValidNumber reports whether s is a JSON number literal.
func isValidNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] != '-' && !isDigit(s[0]) {
		return false
	}
	b := []byte(s)
	i, err := scanNumber(b, 0, true)
	return err == nil && i == len(b)
}
