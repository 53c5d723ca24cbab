package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The admission calls of concurrent requests go to Redis together, as a
// database commits concurrent transactions as a group: requests queue
// their call, one dispatcher goroutine sends every queued call in one
// script call (admitScript takes a batch), in one pipeline with the
// heartbeat (one write, one read), and hands each caller its own answer.
// A request waits for at most the batch in flight and its own, one round
// trip each; alone, it is sent at once. Measured on a 2-core machine
// (BenchmarkRedisAllowN, 64 callers): pipelining gave ~3 times the checks
// per second of one round trip per check, whose syscalls were the bulk of
// the cost, and one script call per batch cut Redis's CPU per check from
// 9 to 6-7 µs (bench/README.md). go-redis's own AutoPipeline measured
// like the pipeline but is marked experimental, and could not send a
// batch as one script call; the dispatcher also carries the replica
// heartbeat in the same round trips.
const (
	// maxBatch bounds the calls of one pipeline; more wait for the next.
	maxBatch = 256
	// queueLen bounds the calls waiting; a request that finds the queue
	// full falls back to the share rather than wait.
	queueLen = 4 * maxBatch
)

var (
	errQueueFull = errors.New("ratelimit: too many Redis calls waiting")
	errClosed    = errors.New("ratelimit: the Redis store is closed")
	errExpired   = errors.New("ratelimit: the Redis call waited past its timeout behind a slow one")
	errTimeout   = errors.New("ratelimit: no answer from Redis within the timeout")
)

// argsPerCall and resultsPerCall are admitScript's ARGV values per
// request and the values it answers per request.
const (
	argsPerCall    = 8
	resultsPerCall = 5
)

// call is one admission queued for the dispatcher.
type call struct {
	keys [2]string
	args [argsPerCall]any
	// deadline bounds the whole call, queueing included: the caller stops
	// waiting then (timer), the dispatcher does not send it after.
	deadline time.Time
	timer    *time.Timer
	res      [resultsPerCall]int64
	err      error
	done     chan struct{} // buffered: the dispatcher never waits
}

// run queues one admission and waits for its answer, at most the store's
// Timeout.
func (r *Redis) run(keys [2]string, args [argsPerCall]any) ([resultsPerCall]int64, error) {
	c, _ := r.calls.Get().(*call)
	if c == nil {
		c = &call{done: make(chan struct{}, 1), timer: time.NewTimer(r.cfg.Timeout)}
	} else {
		c.timer.Reset(r.cfg.Timeout)
	}
	c.keys, c.args, c.deadline = keys, args, time.Now().Add(r.cfg.Timeout)
	select {
	case r.queue <- c:
	default:
		c.timer.Stop()
		r.calls.Put(c)
		return [resultsPerCall]int64{}, errQueueFull
	}
	// Each caller waits for its own timeout, not for the batch's: a call
	// that waited behind a slow round trip does not shorten the bound of
	// the others sent with it. In the two cases below the dispatcher may
	// still hold c: it is not reused.
	select {
	case <-c.done:
	case <-c.timer.C:
		return [resultsPerCall]int64{}, errTimeout
	case <-r.stopped:
		return [resultsPerCall]int64{}, errClosed
	}
	c.timer.Stop()
	res, err := c.res, c.err
	c.keys, c.args, c.err = [2]string{}, [argsPerCall]any{}, nil
	r.calls.Put(c)
	return res, err
}

func (c *call) finish(res [resultsPerCall]int64, err error) {
	c.res, c.err = res, err
	c.done <- struct{}{}
}

// dispatch is the dispatcher's loop: it takes the first call queued, every
// other one already there, and sends them; every HeartbeatInterval it also
// says the replica is live, with calls or alone.
func (r *Redis) dispatch() {
	defer close(r.stopped)
	pipe := r.client.Pipeline()
	batch := make([]*call, 0, maxBatch)
	buf := &batchBuf{send: make([]*call, 0, maxBatch), keys: make([]string, 0, 2*maxBatch), args: make([]any, 0, argsPerCall*maxBatch)}
	tick := time.NewTicker(r.cfg.HeartbeatInterval)
	defer tick.Stop()
	beat := true // at once: the other replicas count this one from the start
	for {
		if !beat {
			select {
			case <-r.closed:
				r.failQueued()
				return
			case c := <-r.queue:
				batch = append(batch, c)
			case <-tick.C:
				beat = true
			}
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-r.queue:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		// While the server is unreachable the probe tries it; a heartbeat
		// would only wait for it to time out.
		r.exec(pipe, batch, beat && r.up.Load(), buf)
		clear(batch)
		batch, beat = batch[:0], false
	}
}

func (r *Redis) failQueued() {
	for {
		select {
		case c := <-r.queue:
			c.finish([resultsPerCall]int64{}, errClosed)
		default:
			return
		}
	}
}

// batchBuf is the dispatcher's scratch space, reused from batch to batch.
type batchBuf struct {
	send []*call
	keys []string
	args []any
}

// exec sends one batch (and the heartbeat when beat) in one pipeline,
// bounded by the store's Timeout; a call already past its deadline (it
// waited behind a slow batch, and its caller has given up) is not sent.
func (r *Redis) exec(pipe redis.Pipeliner, batch []*call, beat bool, buf *batchBuf) {
	now := time.Now()
	send := buf.send[:0]
	for _, c := range batch {
		if !now.Before(c.deadline) {
			c.finish([resultsPerCall]int64{}, errExpired)
			continue
		}
		send = append(send, c)
	}
	if len(send) == 0 && !beat {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	keys, args := buf.keys[:0], buf.args[:0]
	for _, c := range send {
		keys = append(keys, c.keys[:]...)
		args = append(args, c.args[:]...)
	}
	var admit, beatCmd *redis.Cmd
	if len(send) > 0 {
		admit = pipe.EvalSha(ctx, r.admit.Hash(), keys, args...)
	}
	if beat {
		beatCmd = r.heartbeat(ctx, pipe)
	}
	_, _ = pipe.Exec(ctx) // each command has its own error
	if noScript(admit) || noScript(beatCmd) {
		admit, beatCmd = r.reloadScripts(ctx, pipe, admit, beatCmd, keys, args)
	}
	if admit != nil {
		finishBatch(admit, send)
	}
	if beatCmd != nil {
		r.noteReplicas(beatCmd)
	}
	clear(send)
	clear(keys)
	clear(args)
	buf.send, buf.keys, buf.args = send[:0], keys[:0], args[:0]
}

// noScript is whether the server did not know the script: it restarted
// or was flushed since the scripts were loaded.
func noScript(cmd *redis.Cmd) bool {
	return cmd != nil && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT")
}

// reloadScripts loads the scripts and sends the commands again, in one
// more round trip: once after the server lost its script cache, never on
// the way of every request.
func (r *Redis) reloadScripts(ctx context.Context, pipe redis.Pipeliner, admit, beat *redis.Cmd, keys []string, args []any) (*redis.Cmd, *redis.Cmd) {
	// pipe.ScriptLoad, not Script.Load: in a pipeline, Script.Load would
	// take the hash before the answer, "".
	pipe.ScriptLoad(ctx, admitScript)
	pipe.ScriptLoad(ctx, heartbeatScript)
	if admit != nil {
		admit = pipe.EvalSha(ctx, r.admit.Hash(), keys, args...)
	}
	if beat != nil {
		beat = r.heartbeat(ctx, pipe)
	}
	_, _ = pipe.Exec(ctx)
	return admit, beat
}

// finishBatch hands each call its values of the script's answer, or the
// command's error.
func finishBatch(cmd *redis.Cmd, calls []*call) {
	v, err := cmd.Result()
	vals, ok := v.([]any)
	if err == nil && (!ok || len(vals) != resultsPerCall*len(calls)) {
		err = fmt.Errorf("ratelimit: the admission script answered %d values for %d requests", len(vals), len(calls))
	}
	for i, c := range calls {
		var res [resultsPerCall]int64
		for j := 0; err == nil && j < len(res); j++ {
			if res[j], ok = vals[resultsPerCall*i+j].(int64); !ok {
				err = fmt.Errorf("ratelimit: the admission script answered %v", vals[resultsPerCall*i+j])
			}
		}
		c.finish(res, err)
	}
}
