package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/edge/simulate"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// counterDigits is the width of the counter written into every body. It is
// fixed so that a body is a copy of its template with digits overwritten:
// no JSON work per request, which would take CPU from the edge under test.
const counterDigits = 16

// template is one sample body whose provider event id ends in a counter.
type template struct {
	name     string
	provider string
	src      *config.Source
	body     []byte // with the counter at zero
	at       int    // offset of the counter in body
}

// newTemplates makes a template of every sample whose provider has a source
// in signer's config. nonce goes into every event id so that a run on a
// reused store is not answered with duplicates of an earlier run.
func newTemplates(signer *simulate.Signer, nonce string) ([]template, error) {
	placeholder := []byte(nonce + strings.Repeat("0", counterDigits))
	var out []template
	for _, smp := range simulate.Samples() {
		src, ok := signer.SourceFor(smp.Provider)
		if !ok {
			continue
		}
		body := simulate.Unique(smp.Provider, smp.Body, string(placeholder))
		if bytes.Count(body, placeholder) != 1 {
			return nil, fmt.Errorf("sample %s: cannot make its event id unique", smp.Name)
		}
		out = append(out, template{
			name:     smp.Name,
			provider: smp.Provider,
			src:      src,
			body:     body,
			at:       bytes.Index(body, placeholder) + len(nonce),
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the config has no source of any provider with samples (%s)", strings.Join(config.Providers, ", "))
	}
	return out, nil
}

// bodyFor returns the template's body with counter n.
func (t *template) bodyFor(n uint64) []byte {
	b := bytes.Clone(t.body)
	d := b[t.at : t.at+counterDigits]
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

// cavage says whether the template's requests are RSA-signed.
func (t *template) cavage() bool { return t.provider == config.ProviderMarktplaatsLMS }

// mix counts the templates of each provider.
func mix(tpls []template) map[string]int {
	m := map[string]int{}
	for _, t := range tpls {
		m[t.provider]++
	}
	return m
}

// load hands out requests round robin over the templates, each with a
// counter of its own, so no two requests of a run share an event id.
type load struct {
	tpls   []template
	signer *simulate.Signer
	base   string
	nonce  string
	rr     atomic.Uint64 // round-robin position
	seq    atomic.Uint64 // next body counter

	// pool holds pre-signed Marktplaats LMS requests, handed out in order
	// until poolUntil, after which their `created` stamps could be outside
	// the verifier's window.
	pool      []*http.Request
	poolNext  atomic.Int64
	poolUntil time.Time
	inline    atomic.Int64 // RSA-signed during the run: the pool ran out
}

func newLoad(tpls []template, signer *simulate.Signer, base, nonce string) *load {
	return &load{tpls: tpls, signer: signer, base: base, nonce: nonce}
}

// presign fills the pool with n Marktplaats LMS requests on every core: RSA
// signing costs about as much as the edge's whole handling of a request.
func (l *load) presign(ctx context.Context, n int) error {
	var lms []*template
	for i := range l.tpls {
		if l.tpls[i].cavage() {
			lms = append(lms, &l.tpls[i])
		}
	}
	if len(lms) == 0 || n <= 0 {
		return nil
	}
	skew := lms[0].src.MaxClockSkew.Duration
	if skew <= 0 {
		skew = verify.DefaultMaxSkew
	}
	first := l.seq.Add(uint64(n)) - uint64(n)
	pool := make([]*http.Request, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		err     error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				k := next.Add(1) - 1
				if k >= int64(n) || ctx.Err() != nil {
					return
				}
				t := lms[k%int64(len(lms))]
				req, rerr := l.signer.Request(ctx, l.base, t.src, t.name, t.bodyFor(first+uint64(k)))
				if rerr != nil {
					errOnce.Do(func() { err = fmt.Errorf("signing %s: %w", t.name, rerr) })
					return
				}
				pool[k] = req
			}
		})
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	l.pool = pool
	// Half the window leaves room for clock steps and a slow run.
	l.poolUntil = time.Now().Add(skew / 2)
	return nil
}

// request returns the next signed request to the edge.
func (l *load) request(ctx context.Context) (*http.Request, error) {
	t := &l.tpls[(l.rr.Add(1)-1)%uint64(len(l.tpls))]
	if t.cavage() {
		if k := l.poolNext.Add(1) - 1; k < int64(len(l.pool)) && time.Now().Before(l.poolUntil) {
			req := l.pool[k]
			l.pool[k] = nil // let it be collected once answered
			return req, nil
		}
		l.inline.Add(1)
	}
	return l.signer.Request(ctx, l.base, t.src, t.name, t.bodyFor(l.seq.Add(1)-1))
}

// msg returns the next plain JetStream message for the ceiling: the same
// bodies as the edge gets, each with its own Nats-Msg-Id as the edge sets.
func (l *load) msg() *nats.Msg {
	t := &l.tpls[(l.rr.Add(1)-1)%uint64(len(l.tpls))]
	n := l.seq.Add(1) - 1
	return &nats.Msg{
		Subject: ceilingSubjectPrefix + t.provider,
		Header:  nats.Header{nats.MsgIdHdr: []string{l.nonce + ":" + strconv.FormatUint(n, 10)}},
		Data:    t.bodyFor(n),
	}
}
