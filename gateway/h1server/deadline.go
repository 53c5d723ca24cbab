package h1server

import "time"

// Deadlines. Each SetReadDeadline or SetWriteDeadline updates a runtime
// timer, and net/http pays about five per request. Here a deadline that is
// already close enough to the one wanted is left as it is:
//
//   - A read deadline set for one request's head (wait start +
//     ReadHeaderTimeout) still bounds the next request's head within
//     readSlack (an eighth of the timeout, at most 1 s) of exact. When it
//     fires early, extendHeadDeadline moves it to the exact bound and the
//     read is retried (a timed-out read consumes nothing), so the bounds
//     are net/http's: ReadHeaderTimeout from a request's first byte,
//     IdleTimeout from the end of the previous response, ReadTimeout from
//     the first byte once the body has to be read.
//   - A write deadline is kept while it lies within writeSlack before the
//     exact one (the request's first byte + WriteTimeout). A write cannot
//     be retried after a timeout, so a response write may be cut up to
//     writeSlack early: WriteTimeout - writeSlack at worst.
//
// On a busy keep-alive connection, that is one deadline update per
// connection every slack period instead of several per request.

// deadline is t+d, or no deadline (zero) when d is not positive.
func deadline(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t.Add(d)
}

// keepDeadline reports whether the deadline cur may stay in place of
// want: it is no later than want, and at most slack earlier.
func keepDeadline(cur, want time.Time, slack time.Duration) bool {
	if cur.Equal(want) {
		return true
	}
	return !want.IsZero() && !cur.IsZero() && !cur.After(want) && cur.After(want.Add(-slack))
}

func (c *conn) setReadDeadline(t time.Time) {
	_ = c.rwc.SetReadDeadline(t)
	c.rdl = t
}

func (c *conn) setWriteDeadline(t time.Time) {
	_ = c.rwc.SetWriteDeadline(t)
	c.wdl = t
}

// extendHeadDeadline runs when a read for a request head timed out. It
// moves the read deadline to the exact bound when that lies ahead (the
// deadline in force was a lazily kept, earlier one, or the idle wait
// continues) and reports whether to read again. While no byte of a
// request has arrived, the bound is at most the connection's end of life
// (MaxConnectionAge); a request begun before it is read and answered.
func (c *conn) extendHeadDeadline() bool {
	s := c.s
	var limit time.Time
	switch {
	case !c.tFirst.IsZero():
		limit = deadline(c.tFirst, s.headerTimeout)
	case c.first:
		limit = deadline(c.waitStart, s.headerTimeout)
	default:
		limit = deadline(c.waitStart, s.idleTimeout)
	}
	if c.tFirst.IsZero() { // no request begun: the connection's age ends the wait
		limit = c.capAge(limit)
	}
	if !limit.IsZero() && !time.Now().Before(limit) {
		return false
	}
	c.setReadDeadline(limit)
	return true
}
