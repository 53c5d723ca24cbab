package gateway

import (
	"net/http"
	"strconv"
	"time"
)

// apiError is a refusal or failure answered to the agency as
// {"error": code, "message": message}. Messages never carry national IDs or
// upstream bodies.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// write answers the error, building the body in b, which it returns so
// the caller can keep its storage.
func (e *apiError) write(w http.ResponseWriter, b []byte) []byte {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		secs := int64((e.retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.WriteHeader(e.status)
	b = append(b[:0], `{"error":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.message)
	b = append(b, '}', '\n')
	_, _ = w.Write(b)
	return b
}

// appendJSONString quotes s for JSON, escaping quotes, backslashes and
// control characters; other bytes are valid UTF-8 from our own messages.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
