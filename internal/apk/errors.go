package apk

import "errors"

// Errors for malformed packages. Truncated input reports
// io.ErrUnexpectedEOF; everything else wraps one of these.
var (
	errMagic       = errors.New("not an apk v3 package (no ADB magic)")
	errCompression = errors.New("unsupported compression")
	errBlock       = errors.New("malformed block")
	errSchema      = errors.New("not a package (schema is not pckg)")
	errValue       = errors.New("malformed ADB value")
	errIntegrity   = errors.New("file data does not match its metadata")
	errTooLarge    = errors.New("too large for this writer")
	errWork        = errors.New("ADB block too costly to decode")
)
