package demo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

const burstRequests = 60

func (r *runner) rateLimit(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	vcb := r.agencies["VCB"]
	body := []byte(fmt.Sprintf(`{"nationalId":%q,"fullName":%q}`, c.NationalID, c.FullName))
	// Let the token bucket refill after the previous step's requests, so
	// the count below shows the configured burst.
	time.Sleep(time.Second)
	r.n.cmd(fmt.Sprintf("%d x POST /v1/citizens:verify at once  (as VCB)", burstRequests))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		limited  *response
		errs     []string
		start    = make(chan struct{})
	)
	for range burstRequests {
		wg.Go(func() {
			<-start
			resp, err := r.call(ctx, vcb.client, http.MethodPost, "/v1/citizens:verify", body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			statuses[resp.status]++
			if resp.status == http.StatusTooManyRequests && limited == nil {
				limited = resp
			}
		})
	}
	t := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t).Round(time.Millisecond)
	for _, n := range statuses {
		r.responses += n
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of the burst's requests failed: %s", len(errs), errs[0])
	}
	n200, n429 := statuses[http.StatusOK], statuses[http.StatusTooManyRequests]
	r.n.info("-> %d x 200 OK, %d x 429 Too Many Requests (all %d answered in %s)", n200, n429, burstRequests, elapsed)
	if limited != nil {
		r.shown = append(r.shown, shownRequest{requestID: limited.requestID, what: "VCB over its rate (429)"})
		r.n.info("-> 429 Retry-After: %s  %s", limited.retryAfter, strings.TrimSpace(string(limited.body)))
	}
	if err := r.n.expect(n200 > 0 && n429 > 0 && n200+n429 == burstRequests, "some served, the rest refused with 429 (200: %d, 429: %d, other: %d)", n200, n429, burstRequests-n200-n429); err != nil {
		return err
	}
	return r.n.expect(limited != nil && limited.retryAfter != "", "429 carries Retry-After")
}
