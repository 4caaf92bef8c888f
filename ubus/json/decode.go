package json

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Unmarshal parses the JSON-encoded data and stores the result in the
// value pointed to by v, as encoding/json.Unmarshal does: the whole input
// is checked first, then decoded; a value of the wrong type for its
// destination is skipped and reported (the first such error) once the
// rest has been stored.
func Unmarshal(data []byte, v any) error {
	if err := checkValid(data); err != nil {
		return err
	}
	d := decodeState{data: data}
	return d.unmarshal(v)
}

type decodeState struct {
	data       []byte // one valid JSON value (and white space)
	off        int
	useNumber  bool
	saved      error
	errStruct  reflect.Type
	fieldStack []string
}

func (d *decodeState) unmarshal(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &InvalidUnmarshalError{reflect.TypeOf(v)}
	}
	if err := d.value(rv); err != nil {
		return d.addErrorContext(err)
	}
	return d.saved
}

func (d *decodeState) saveError(err error) {
	if d.saved == nil {
		d.saved = d.addErrorContext(err)
	}
}

func (d *decodeState) addErrorContext(err error) error {
	if d.errStruct != nil || len(d.fieldStack) > 0 {
		if e, ok := err.(*UnmarshalTypeError); ok {
			e.Struct = d.errStruct.Name()
			fs := d.fieldStack
			if e.Field != "" {
				fs = append(fs[:len(fs):len(fs)], e.Field)
			}
			e.Field = strings.Join(fs, ".")
		}
	}
	return err
}

func (d *decodeState) typeError(what string, t reflect.Type) {
	d.saveError(&UnmarshalTypeError{Value: what, Type: t, Offset: int64(d.off)})
}

func (d *decodeState) skipSpace() {
	for d.off < len(d.data) && isSpace(d.data[d.off]) {
		d.off++
	}
}

// skip moves past the value at d.off.
func (d *decodeState) skip() {
	d.off, _ = scan(d.data, d.off, true)
}

// literal returns the string, number or literal at d.off and moves past it.
func (d *decodeState) literal() []byte {
	start := d.off
	switch d.data[start] {
	case '"':
		d.off, _ = scanString(d.data, start, true)
	case 't', 'n':
		d.off = start + 4
	case 'f':
		d.off = start + 5
	default:
		d.off, _ = scanNumber(d.data, start, true)
	}
	return d.data[start:d.off]
}

// value decodes the value at d.off into v; an invalid v skips it.
func (d *decodeState) value(v reflect.Value) error {
	d.skipSpace()
	if !v.IsValid() {
		d.skip()
		return nil
	}
	switch d.data[d.off] {
	case '[':
		return d.array(v)
	case '{':
		return d.object(v)
	}
	start := d.off
	item := d.literal()
	return d.literalStore(item, v, start)
}

// indirect walks down v, allocating pointers, until it reaches a
// non-pointer, or a type with an UnmarshalJSON or (unless decoding null)
// UnmarshalText method; with decodingNull it stops at the last settable
// pointer, so that null sets it to nil.
func indirect(v reflect.Value, decodingNull bool) (Unmarshaler, encoding.TextUnmarshaler, reflect.Value) {
	v0 := v
	haveAddr := false
	if v.Kind() != reflect.Pointer && v.Type().Name() != "" && v.CanAddr() {
		haveAddr = true
		v = v.Addr()
	}
	for {
		if v.Kind() == reflect.Interface && !v.IsNil() {
			e := v.Elem()
			if e.Kind() == reflect.Pointer && !e.IsNil() && (!decodingNull || e.Elem().Kind() == reflect.Pointer) {
				haveAddr = false
				v = e
				continue
			}
		}
		if v.Kind() != reflect.Pointer {
			break
		}
		if decodingNull && v.CanSet() {
			break
		}
		if v.Elem().Kind() == reflect.Interface && v.Elem().Elem().Equal(v) {
			v = v.Elem()
			break
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if v.Type().NumMethod() > 0 && v.CanInterface() {
			if u, ok := v.Interface().(Unmarshaler); ok {
				return u, nil, reflect.Value{}
			}
			if !decodingNull {
				if u, ok := v.Interface().(encoding.TextUnmarshaler); ok {
					return nil, u, reflect.Value{}
				}
			}
		}
		if haveAddr {
			v = v0
			haveAddr = false
		} else {
			v = v.Elem()
		}
	}
	return nil, nil, v
}

func (d *decodeState) array(v reflect.Value) error {
	u, ut, pv := indirect(v, false)
	if u != nil {
		start := d.off
		d.skip()
		return u.UnmarshalJSON(d.data[start:d.off])
	}
	if ut != nil {
		d.typeError("array", v.Type())
		d.skip()
		return nil
	}
	v = pv
	switch v.Kind() {
	case reflect.Interface:
		if v.NumMethod() == 0 {
			v.Set(reflect.ValueOf(d.arrayInterface()))
			return nil
		}
		fallthrough
	default:
		d.typeError("array", v.Type())
		d.skip()
		return nil
	case reflect.Array, reflect.Slice:
	}
	d.off++ // [
	i := 0
	for {
		d.skipSpace()
		if d.data[d.off] == ']' {
			d.off++
			break
		}
		if v.Kind() == reflect.Slice {
			if i >= v.Cap() {
				v.Grow(1)
			}
			if i >= v.Len() {
				v.SetLen(i + 1)
			}
		}
		var err error
		if i < v.Len() {
			err = d.value(v.Index(i))
		} else {
			err = d.value(reflect.Value{})
		}
		if err != nil {
			return err
		}
		i++
		d.skipSpace()
		if d.data[d.off] == ',' {
			d.off++
		}
	}
	if i < v.Len() {
		if v.Kind() == reflect.Array {
			for ; i < v.Len(); i++ {
				v.Index(i).SetZero()
			}
		} else {
			v.SetLen(i)
		}
	}
	if i == 0 && v.Kind() == reflect.Slice {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	return nil
}

// key reads an object key and the ':' after it; item is the quoted key.
func (d *decodeState) key() (key, item []byte) {
	d.skipSpace()
	item = d.literal()
	d.skipSpace()
	d.off++ // :
	k, _ := unquote(item)
	return k, item
}

// next moves past the ',' or '}' after a member; it reports whether the
// object has ended.
func (d *decodeState) next(end byte) bool {
	d.skipSpace()
	c := d.data[d.off]
	d.off++
	return c == end
}

func (d *decodeState) object(v reflect.Value) error {
	u, ut, pv := indirect(v, false)
	if u != nil {
		start := d.off
		d.skip()
		return u.UnmarshalJSON(d.data[start:d.off])
	}
	if ut != nil {
		d.typeError("object", v.Type())
		d.skip()
		return nil
	}
	v = pv
	t := v.Type()
	if v.Kind() == reflect.Interface && v.NumMethod() == 0 {
		v.Set(reflect.ValueOf(d.objectInterface()))
		return nil
	}
	var fields *structFields
	switch v.Kind() {
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !reflect.PointerTo(t.Key()).Implements(textUnmarshalerType) {
				d.typeError("object", t)
				d.skip()
				return nil
			}
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
	case reflect.Struct:
		fields = cachedFields(t)
	default:
		d.typeError("object", t)
		d.skip()
		return nil
	}

	origStruct, origDepth := d.errStruct, len(d.fieldStack)
	var mapElem reflect.Value
	d.off++ // {
	d.skipSpace()
	if d.data[d.off] == '}' {
		d.off++
		return nil
	}
	for {
		keyStart := d.off
		key, item := d.key()
		var subv reflect.Value
		if v.Kind() == reflect.Map {
			if !mapElem.IsValid() {
				mapElem = reflect.New(t.Elem()).Elem()
			} else {
				mapElem.SetZero()
			}
			subv = mapElem
		} else {
			f := fields.byExactName[string(key)]
			if f == nil {
				f = fields.byFoldName[string(foldName(key))]
			}
			if f != nil {
				subv = v
				for i, ind := range f.index {
					if subv.Kind() == reflect.Pointer {
						if subv.IsNil() {
							if !subv.CanSet() {
								d.saveError(fmt.Errorf("json: cannot set embedded pointer to unexported struct: %v", subv.Type().Elem()))
								subv = reflect.Value{}
								break
							}
							subv.Set(reflect.New(subv.Type().Elem()))
						}
						subv = subv.Elem()
					}
					if i < len(f.index)-1 {
						d.fieldStack = append(d.fieldStack, subv.Type().Field(ind).Name)
					}
					subv = subv.Field(ind)
				}
				d.errStruct = t
				d.fieldStack = append(d.fieldStack, f.name)
			}
		}
		if err := d.value(subv); err != nil {
			return err
		}
		if v.Kind() == reflect.Map {
			if err := d.setMapIndex(v, key, item, subv, keyStart); err != nil {
				return err
			}
		}
		d.fieldStack = d.fieldStack[:origDepth]
		d.errStruct = origStruct
		if d.next('}') {
			return nil
		}
	}
}

func (d *decodeState) setMapIndex(v reflect.Value, key, item []byte, elem reflect.Value, start int) error {
	kt := v.Type().Key()
	var kv reflect.Value
	if reflect.PointerTo(kt).Implements(textUnmarshalerType) {
		kv = reflect.New(kt)
		if err := d.literalStore(item, kv, start); err != nil {
			return err
		}
		kv = kv.Elem()
	} else {
		switch kt.Kind() {
		case reflect.String:
			kv = reflect.New(kt).Elem()
			kv.SetString(string(key))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(string(key), 10, 64)
			if err != nil || kt.OverflowInt(n) {
				d.saveError(&UnmarshalTypeError{Value: "number " + string(key), Type: kt, Offset: int64(start + 1)})
				return nil
			}
			kv = reflect.New(kt).Elem()
			kv.SetInt(n)
		default:
			n, err := strconv.ParseUint(string(key), 10, 64)
			if err != nil || kt.OverflowUint(n) {
				d.saveError(&UnmarshalTypeError{Value: "number " + string(key), Type: kt, Offset: int64(start + 1)})
				return nil
			}
			kv = reflect.New(kt).Elem()
			kv.SetUint(n)
		}
	}
	v.SetMapIndex(kv, elem)
	return nil
}

func (d *decodeState) convertNumber(s string) (any, error) {
	if d.useNumber {
		return Number(s), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, &UnmarshalTypeError{Value: "number " + s, Type: reflect.TypeFor[float64](), Offset: int64(d.off)}
	}
	return f, nil
}

// literalStore stores the string, number or literal item into v.
func (d *decodeState) literalStore(item []byte, v reflect.Value, start int) error {
	isNull := item[0] == 'n'
	u, ut, pv := indirect(v, isNull)
	if u != nil {
		return u.UnmarshalJSON(item)
	}
	if ut != nil {
		if item[0] != '"' {
			what := "number"
			switch item[0] {
			case 'n':
				what = "null"
			case 't', 'f':
				what = "bool"
			}
			d.typeError(what, v.Type())
			return nil
		}
		s, _ := unquote(item)
		return ut.UnmarshalText(s)
	}
	v = pv
	switch c := item[0]; c {
	case 'n':
		switch v.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice:
			v.SetZero()
		}
	case 't', 'f':
		switch v.Kind() {
		default:
			d.typeError("bool", v.Type())
		case reflect.Bool:
			v.SetBool(c == 't')
		case reflect.Interface:
			if v.NumMethod() == 0 {
				v.Set(reflect.ValueOf(c == 't'))
			} else {
				d.typeError("bool", v.Type())
			}
		}
	case '"':
		s, _ := unquote(item)
		switch v.Kind() {
		default:
			d.typeError("string", v.Type())
		case reflect.Slice:
			if v.Type().Elem().Kind() != reflect.Uint8 {
				d.typeError("string", v.Type())
				break
			}
			b, err := decodeBase64(s)
			if err != nil {
				d.saveError(err)
				break
			}
			v.SetBytes(b)
		case reflect.String:
			t := string(s)
			if v.Type() == numberType && !isValidNumber(t) {
				return fmt.Errorf("json: invalid number literal, trying to unmarshal %q into Number", item)
			}
			v.SetString(t)
		case reflect.Interface:
			if v.NumMethod() == 0 {
				v.Set(reflect.ValueOf(string(s)))
			} else {
				d.typeError("string", v.Type())
			}
		}
	default: // number
		s := string(item)
		switch v.Kind() {
		default:
			if v.Kind() == reflect.String && v.Type() == numberType {
				v.SetString(s)
				break
			}
			d.typeError("number", v.Type())
		case reflect.Interface:
			n, err := d.convertNumber(s)
			if err != nil {
				d.saveError(err)
				break
			}
			if v.NumMethod() != 0 {
				d.typeError("number", v.Type())
				break
			}
			v.Set(reflect.ValueOf(n))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v.OverflowInt(n) {
				d.typeError("number "+s, v.Type())
				break
			}
			v.SetInt(n)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || v.OverflowUint(n) {
				d.typeError("number "+s, v.Type())
				break
			}
			v.SetUint(n)
		case reflect.Float32, reflect.Float64:
			n, err := strconv.ParseFloat(s, v.Type().Bits())
			if err != nil || v.OverflowFloat(n) {
				d.typeError("number "+s, v.Type())
				break
			}
			v.SetFloat(n)
		}
	}
	return nil
}

// valueInterface decodes the value at d.off as map[string]any, []any,
// string, float64 (or Number), bool or nil.
func (d *decodeState) valueInterface() any {
	d.skipSpace()
	switch d.data[d.off] {
	case '[':
		return d.arrayInterface()
	case '{':
		return d.objectInterface()
	}
	item := d.literal()
	switch item[0] {
	case 'n':
		return nil
	case 't', 'f':
		return item[0] == 't'
	case '"':
		s, _ := unquote(item)
		return string(s)
	}
	n, err := d.convertNumber(string(item))
	if err != nil {
		d.saveError(err)
	}
	return n
}

func (d *decodeState) arrayInterface() []any {
	v := make([]any, 0)
	d.off++ // [
	d.skipSpace()
	if d.data[d.off] == ']' {
		d.off++
		return v
	}
	for {
		v = append(v, d.valueInterface())
		if d.next(']') {
			return v
		}
	}
}

func (d *decodeState) objectInterface() map[string]any {
	m := make(map[string]any)
	d.off++ // {
	d.skipSpace()
	if d.data[d.off] == '}' {
		d.off++
		return m
	}
	for {
		key, _ := d.key()
		m[string(key)] = d.valueInterface()
		if d.next('}') {
			return m
		}
	}
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	default:
		return rune(c - 'A' + 10)
	}
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		if !isHex(c) {
			return -1
		}
		r = r<<4 | hexVal(c)
	}
	return r
}

// unquote decodes a valid JSON string literal: escapes resolved, a
// surrogate pair joined, a lone surrogate and invalid UTF-8 replaced by
// U+FFFD, as encoding/json does.
func unquote(s []byte) ([]byte, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, false
	}
	s = s[1 : len(s)-1]
	r := 0
	for r < len(s) {
		c := s[r]
		if c == '\\' || c == '"' || c < ' ' || c >= utf8.RuneSelf {
			break
		}
		r++
	}
	if r == len(s) {
		return s, true
	}
	b := make([]byte, r, len(s)+2*utf8.UTFMax)
	copy(b, s[:r])
	for r < len(s) {
		switch c := s[r]; {
		case c == '\\':
			r++
			if r >= len(s) {
				return nil, false
			}
			switch s[r] {
			default:
				return nil, false
			case '"', '\\', '/', '\'':
				b = append(b, s[r])
				r++
			case 'b':
				b = append(b, '\b')
				r++
			case 'f':
				b = append(b, '\f')
				r++
			case 'n':
				b = append(b, '\n')
				r++
			case 'r':
				b = append(b, '\r')
				r++
			case 't':
				b = append(b, '\t')
				r++
			case 'u':
				r--
				rr := getu4(s[r:])
				if rr < 0 {
					return nil, false
				}
				r += 6
				if 0xd800 <= rr && rr < 0xe000 {
					rr1 := getu4(s[r:])
					if rr < 0xdc00 && 0xdc00 <= rr1 && rr1 < 0xe000 {
						r += 6
						b = utf8.AppendRune(b, (rr-0xd800)<<10|(rr1-0xdc00)+0x10000)
						break
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
			}
		case c == '"' || c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return b, true
}

// decodeBase64 is base64.StdEncoding.Decode, errors and all: padded,
// \r and \n ignored, non-zero trailing bits accepted.
func decodeBase64(src []byte) ([]byte, error) {
	out := []byte{}
	si := 0
	for {
		var q [4]byte
		dlen := 4
	quantum:
		for j := 0; j < 4; j++ {
			if si == len(src) {
				if j == 0 {
					return out, nil
				}
				return nil, errBase64(si - j)
			}
			c := src[si]
			si++
			switch {
			case 'A' <= c && c <= 'Z':
				q[j] = c - 'A'
				continue
			case 'a' <= c && c <= 'z':
				q[j] = c - 'a' + 26
				continue
			case '0' <= c && c <= '9':
				q[j] = c - '0' + 52
				continue
			case c == '+':
				q[j] = 62
				continue
			case c == '/':
				q[j] = 63
				continue
			case c == '\n' || c == '\r':
				j--
				continue
			case c != '=' || j < 2:
				return nil, errBase64(si - 1)
			}
			if j == 2 { // a second '=' must follow
				for si < len(src) && (src[si] == '\n' || src[si] == '\r') {
					si++
				}
				if si == len(src) {
					return nil, errBase64(len(src))
				}
				if src[si] != '=' {
					return nil, errBase64(si - 1)
				}
				si++
			}
			for si < len(src) && (src[si] == '\n' || src[si] == '\r') {
				si++
			}
			if si < len(src) {
				return nil, errBase64(si)
			}
			dlen = j
			break quantum
		}
		v := uint(q[0])<<18 | uint(q[1])<<12 | uint(q[2])<<6 | uint(q[3])
		out = append(out, byte(v>>16), byte(v>>8), byte(v))[:len(out)+dlen-1]
		if dlen < 4 {
			return out, nil
		}
	}
}

func errBase64(i int) error {
	return errors.New("illegal base64 data at input byte " + strconv.Itoa(i))
}
