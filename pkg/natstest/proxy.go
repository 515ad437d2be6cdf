package natstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a NATS server and can freeze them:
// while frozen it passes nothing on in either direction, as a server that
// stopped answering without closing its connections (a stalled disk, a long
// pause). It counts what clients sent while frozen, so a test knows when a
// write is stuck in it.
type Proxy struct {
	ln     net.Listener
	gate   sync.RWMutex // held for writing while frozen
	frozen atomic.Bool
	held   atomic.Int64 // bytes clients sent while frozen
}

// NewProxy starts a proxy to target (host:port or a nats:// URL), closed
// when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	target = strings.TrimPrefix(target, "nats://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		p.Thaw()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() { p.pipe(out, in, true) })
			wg.Go(func() { p.pipe(in, out, false) })
		}
	})
	return p
}

// URL is the proxy's client URL.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Freeze stops all traffic until Thaw.
func (p *Proxy) Freeze() {
	if p.frozen.CompareAndSwap(false, true) {
		p.gate.Lock()
	}
}

// Thaw lets traffic through again.
func (p *Proxy) Thaw() {
	if p.frozen.CompareAndSwap(true, false) {
		p.gate.Unlock()
	}
}

// Held is how many bytes clients sent while the proxy was frozen.
func (p *Proxy) Held() int64 { return p.held.Load() }

func (p *Proxy) pipe(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient && p.frozen.Load() {
				p.held.Add(int64(n))
			}
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
