package blob

import "errors"

// Errors for malformed input. Truncated input wraps io.ErrUnexpectedEOF
// instead; every error is wrapped with the "blob:" prefix and context.
// Callers are not expected to branch on these, so they are unexported.
var (
	// errAttrLen: a blob_attr length field is smaller than its own header,
	// or a value is larger than BLOB_ATTR_LEN_MASK allows.
	errAttrLen = errors.New("invalid attribute length")
	// errTrailing: bytes left over after a single attribute.
	errTrailing = errors.New("trailing bytes after attribute")
	// errName: a blobmsg name header is short or its name is not
	// NUL-terminated, or a name is longer than 65535 bytes.
	errName = errors.New("invalid blobmsg name")
	// errType: an unknown blobmsg type, or a getter called on an attribute
	// of an incompatible type.
	errType = errors.New("invalid blobmsg type")
	// errValueLen: a fixed-size value (int, double) has the wrong size, or
	// a string is not NUL-terminated.
	errValueLen = errors.New("invalid value length")
	// errNotObject: FromJSON and Marshal need a JSON object (or null).
	errNotObject = errors.New("JSON value is not an object")
	// errDepth: nesting deeper than maxDepth.
	errDepth = errors.New("nesting too deep")
)
