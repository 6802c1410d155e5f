package forge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// RawString is a JSON string that payload parsers use for ref names. encoding/json turns
// bytes that are not UTF-8 into U+FFFD, which would make a ref git never had look valid to
// fabu.dev/libs/gitref; RawString keeps an unescaped string byte for byte instead, so
// validation sees what was sent. An escaped string is decoded, and one whose escapes do not
// make UTF-8 (a lone surrogate such as \udc00) is an error rather than a U+FFFD. JSON null
// is "".
type RawString string

// UnmarshalJSON implements json.Unmarshaler.
func (r *RawString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = ""
		return nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		*r = RawString(b[1 : len(b)-1])
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if strings.ContainsRune(s, '\uFFFD') && !bytes.Contains(b, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`)) {
		return errNotUTF8
	}
	*r = RawString(s)
	return nil
}

var errNotUTF8 = errors.New("string escapes a lone surrogate, which is not UTF-8")
