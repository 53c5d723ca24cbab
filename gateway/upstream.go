package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
)

// upstreamResult is a successful upstream exchange: status and bounded body.
type upstreamResult struct {
	status int
	body   []byte
}

// callUpstream sends one request to the database API and reads at most
// maxBody bytes of the answer into buf. Only the headers the gateway sets
// are sent, and none of the upstream's headers are kept. A transport error
// is a 502, a timeout a 504, and an oversized body a 502.
func (g *Gateway) callUpstream(ctx context.Context, method, url string, body []byte, reqID, agency string, buf *bytes.Buffer) (upstreamResult, *apiError) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.UpstreamTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return upstreamResult{}, errorf(http.StatusBadGateway, "upstream_error", "could not build the upstream request")
	}
	req.Header["Accept"] = []string{"application/json"}
	req.Header["X-Request-Id"] = []string{reqID}
	req.Header["X-Popconnect-Agency"] = []string{agency}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	resp, err := g.upstream.Do(req)
	if err != nil {
		return upstreamResult{}, upstreamFailure(ctx, err)
	}
	defer resp.Body.Close()
	limit := g.cfg.MaxUpstreamBodyBytes
	if resp.ContentLength > limit {
		return upstreamResult{}, errorf(http.StatusBadGateway, "upstream_error", "the upstream response is too large")
	}
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return upstreamResult{}, upstreamFailure(ctx, err)
	}
	if n > limit {
		return upstreamResult{}, errorf(http.StatusBadGateway, "upstream_error", "the upstream response is too large")
	}
	return upstreamResult{status: resp.StatusCode, body: buf.Bytes()}, nil
}

func upstreamFailure(ctx context.Context, err error) *apiError {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
		return errorf(http.StatusGatewayTimeout, "upstream_timeout", "the population database did not answer in time")
	}
	return errorf(http.StatusBadGateway, "upstream_error", "the population database could not be reached")
}

// upstreamStatusError maps an unexpected upstream status to what the agency
// sees. The upstream body is never passed through.
func upstreamStatusError(status int) *apiError {
	if status == http.StatusNotFound {
		return errorf(http.StatusNotFound, "not_found", "no citizen has this national ID")
	}
	return errorf(http.StatusBadGateway, "upstream_error", "the population database answered with an error")
}

func invalidUpstream() *apiError {
	return errorf(http.StatusBadGateway, "upstream_invalid", "the population database sent a record the gateway cannot vouch for")
}
