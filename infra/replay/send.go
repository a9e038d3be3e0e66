package replay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// Target sends one request and returns the answer's status and body: over
// HTTP to a server, or through a handler as Lambda calls it.
type Target func(ctx context.Context, r *Request) (status int, body []byte, err error)

// HTTP returns a Target that posts each request with hc.
func HTTP(hc *http.Client) Target {
	return func(ctx context.Context, r *Request) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
		if err != nil {
			return 0, nil, err
		}
		req.Header = r.Header.Clone()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
}

// Answer is what one send was answered.
type Answer struct {
	Send   *Send
	Status int
	Body   []byte
	Err    error
	Took   time.Duration
}

// SendAll sends every send through t from workers concurrent senders, which
// take them in order, and returns the answers in the order of sends.
func SendAll(ctx context.Context, sends []*Send, workers int, t Target) []Answer {
	answers := make([]Answer, len(sends))
	each(len(sends), workers, func(i int) {
		s := sends[i]
		a := Answer{Send: s}
		start := time.Now()
		req, err := s.Request()
		if err == nil {
			a.Status, a.Body, err = t(ctx, req)
		}
		a.Err, a.Took = err, time.Since(start)
		answers[i] = a
	})
	return answers
}

// each calls f(0), ..., f(n-1) from workers goroutines, handing out the
// indexes in order.
func each(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
