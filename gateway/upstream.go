package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"
)

// upstreamResult is a successful upstream exchange: status and bounded body.
type upstreamResult struct {
	status int
	body   []byte
}

// callUpstream sends one request to the database API and reads at most
// MaxUpstreamBodyBytes of the answer into buf. Only the headers the gateway
// sets are sent, and none of the upstream's headers are kept. A transport
// error is a 502, a timeout a 504, and an oversized body a 502.
//
// The timeout is a deadline on the connection rather than a derived
// context: a context.WithTimeout per request costs a timer and a cancel
// context on the hot path, and the connection deadline is what enforces it
// anyway.
func (g *Gateway) callUpstream(x *exchange, method, path string, body []byte) (upstreamResult, *apiError) {
	ctx, buf := x.r.Context(), &x.buf
	// Now, read from the monotonic clock alone (time.Since): on a VM's
	// clock each clock read is a vDSO call of about 75 ns, and time.Now
	// makes two (wall and monotonic). The deadline only needs the
	// monotonic reading; the wall one is the start's, moved by as much.
	deadline := x.started.Add(time.Since(x.started) + g.cfg.UpstreamTimeout)
	status, err := g.upstream.roundTrip(ctx, deadline, method, path, body, x.rec.RequestID, x.rec.Agency, g.cfg.MaxUpstreamBodyBytes, buf)
	if errors.Is(err, errTooLarge) || errors.Is(err, errHeaderTooLarge) {
		return upstreamResult{}, errorf(http.StatusBadGateway, "upstream_error", "the upstream response is too large")
	}
	if err != nil {
		return upstreamResult{}, upstreamFailure(ctx, err)
	}
	return upstreamResult{status: status, body: buf.Bytes()}, nil
}

func upstreamFailure(ctx context.Context, err error) *apiError {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil ||
		errors.As(err, &ne) && ne.Timeout() {
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
