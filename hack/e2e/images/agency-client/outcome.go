package main

import (
	"encoding/json"
	"strconv"
	"time"
)

// Outcome is what one request got: an HTTP status with the gateway's error
// code, or a transport error (no status).
type Outcome struct {
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
}

// OK reports a 200.
func (o Outcome) OK() bool { return o.Status == 200 }

// String is the outcome as a summary's key: "200", "403 agency_suspended",
// "error: ...".
func (o Outcome) String() string {
	switch {
	case o.Status == 0:
		return "error: " + o.Error
	case o.Code == "":
		return strconv.Itoa(o.Status)
	default:
		return strconv.Itoa(o.Status) + " " + o.Code
	}
}

// Classify reads a response: the gateway refuses with
// {"error": code, "message": ...}; a 200 carries the record.
func Classify(status int, body []byte) Outcome {
	o := Outcome{Status: status}
	if status != 200 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil {
			o.Code = e.Error
		}
	}
	return o
}

// DialResult is dial's answer.
type DialResult struct {
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
}

// GetResult is one of get's requests.
type GetResult struct {
	Outcome
	Body string `json:"body,omitempty"`
}

// Change is a line of watch: from Time (Unix nanoseconds, when the request
// was sent) on, requests got Outcome.
type Change struct {
	Time    int64   `json:"time"`
	Outcome Outcome `json:"outcome"`
}

// Summary is load's result: how many requests got each outcome, and when
// (Unix nanoseconds) the first and last request that did not get a 200
// were sent.
type Summary struct {
	Requests     int            `json:"requests"`
	OK           int            `json:"ok"`
	Outcomes     map[string]int `json:"outcomes"`
	FirstNotOK   int64          `json:"firstNotOK,omitempty"`
	LastNotOK    int64          `json:"lastNotOK,omitempty"`
	FirstRequest int64          `json:"firstRequest,omitempty"`
	LastRequest  int64          `json:"lastRequest,omitempty"`
}

// NewSummary is an empty summary.
func NewSummary() *Summary { return &Summary{Outcomes: map[string]int{}} }

// Add counts a request sent at sent.
func (s *Summary) Add(sent time.Time, o Outcome) {
	t := sent.UnixNano()
	s.Requests++
	s.Outcomes[o.String()]++
	if s.FirstRequest == 0 || t < s.FirstRequest {
		s.FirstRequest = t
	}
	if t > s.LastRequest {
		s.LastRequest = t
	}
	if o.OK() {
		s.OK++
		return
	}
	if s.FirstNotOK == 0 || t < s.FirstNotOK {
		s.FirstNotOK = t
	}
	if t > s.LastNotOK {
		s.LastNotOK = t
	}
}
