// Package jsondiff compares carpd's package json (ubus/json) with encoding/json: the same
// bytes out of Marshal, the same values and errors out of Unmarshal. The
// tests of that package and of the packages that use it share it.
package jsondiff

import (
	stdjson "encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	json "github.com/carpd/carpd/ubus/json"
)

// Marshal compares Marshal and MarshalIndent of v; it returns the bytes
// (nil if both failed) or a description of the difference.
func Marshal(v any) ([]byte, error) {
	want, werr := stdjson.Marshal(v)
	got, gerr := json.Marshal(v)
	if err := sameErr("Marshal", werr, gerr); err != nil {
		return nil, err
	}
	if string(got) != string(want) {
		return nil, fmt.Errorf("Marshal(%#v):\n got %s\nwant %s", v, got, want)
	}
	wantI, _ := stdjson.MarshalIndent(v, "", "  ")
	gotI, _ := json.MarshalIndent(v, "", "  ")
	if string(gotI) != string(wantI) {
		return nil, fmt.Errorf("MarshalIndent(%#v):\n got %s\nwant %s", v, gotI, wantI)
	}
	return want, nil
}

func sameErr(what string, want, got error) error {
	switch {
	case (want == nil) != (got == nil):
		return fmt.Errorf("%s: error %v, encoding/json's %v", what, got, want)
	case want != nil && got.Error() != want.Error():
		return fmt.Errorf("%s: error\n %q\nencoding/json's\n %q", what, got, want)
	}
	return nil
}

// Unmarshal decodes data into two new values of newV's type (newV returns
// a pointer), with ubus/json and encoding/json, and compares the errors and
// the values.
func Unmarshal(data []byte, newV func() any) error {
	want, got := newV(), newV()
	werr := stdjson.Unmarshal(data, want)
	gerr := json.Unmarshal(data, got)
	if err := sameErr(fmt.Sprintf("Unmarshal(%q) into %T", data, want), werr, gerr); err != nil {
		return err
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("Unmarshal(%q) into %T:\n got %#v\nwant %#v", data, want, got, want)
	}
	if json.Valid(data) != stdjson.Valid(data) {
		return fmt.Errorf("Valid(%q) = %v", data, json.Valid(data))
	}
	return nil
}

// Fill sets every field, element and pointer reachable from v (a
// settable value) to something non-zero drawn from r, with strings that
// need escaping, up to depth levels of nesting.
func Fill(v reflect.Value, r *rand.Rand, depth int) {
	if depth <= 0 {
		return
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("", int(r.IntN(25)-12)*3600))))
		return
	}
	if v.Type() == reflect.TypeFor[json.RawMessage]() || v.Type() == reflect.TypeFor[stdjson.RawMessage]() {
		v.SetBytes([]byte(` {"a": [1, "<x>"] } `))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(r.Uint64()) >> (64 - v.Type().Bits() + r.IntN(v.Type().Bits())))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(r.Uint64() >> (64 - v.Type().Bits() + r.IntN(v.Type().Bits())))
	case reflect.Float32, reflect.Float64:
		f := []float64{0.1, 1e21, 1e-7, 123456789, -0.000001, 3.5, 1e20, float64(r.Int64()) / 1000}[r.IntN(8)]
		v.SetFloat(f)
	case reflect.String:
		v.SetString([]string{"eth0", "a<b>&c", "\u2028\u2029 é \x01\t\n\"\\", "wan6", "\xff\xfe"}[r.IntN(5)])
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		Fill(v.Elem(), r, depth-1)
	case reflect.Slice:
		n := 1 + r.IntN(2)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			Fill(v.Index(i), r, depth-1)
		}
	case reflect.Array:
		for i := range v.Len() {
			Fill(v.Index(i), r, depth-1)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 3 {
			k := reflect.New(v.Type().Key()).Elem()
			Fill(k, r, depth-1)
			e := reflect.New(v.Type().Elem()).Elem()
			Fill(e, r, depth-1)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				Fill(v.Field(i), r, depth-1)
			}
		}
	case reflect.Interface:
		if v.NumMethod() == 0 {
			v.Set(reflect.ValueOf(map[string]any{"n": 1.5, "s": "x<", "l": []any{true, nil}}))
		}
	}
}

// RoundTrip fills a new value of T's type from seed, compares Marshal of
// it and Unmarshal of the result into a new value (of a type with the same
// fields, fresh or not).
func RoundTrip[T any](seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var v T
	Fill(reflect.ValueOf(&v).Elem(), r, 8)
	b, err := Marshal(&v)
	if err != nil {
		return err
	}
	if b == nil {
		return nil
	}
	if _, err := Marshal(v); err != nil {
		return err
	}
	return Unmarshal(b, func() any { return new(T) })
}
