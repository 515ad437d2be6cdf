package natstest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of real nats-servers in the test process,
// routed on 127.0.0.1, each with its own store and fsync before every ack.
// A node can be stopped and started again on the same ports and store.
type Cluster struct {
	t       testing.TB
	Servers []*server.Server
	opts    []func() *server.Options
}

// RunCluster starts n servers that route to each other and waits until
// JetStream has a meta leader. They are shut down when the test ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	dir := t.TempDir()
	c := &Cluster{t: t, Servers: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, func() *server.Options {
			return &server.Options{
				ServerName:         fmt.Sprintf("n%d", i+1),
				Host:               "127.0.0.1",
				Port:               clientPorts[i],
				JetStream:          true,
				StoreDir:           filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
				SyncAlways:         true,
				NoSigs:             true,
				MaxPayload:         8 << 20,
				JetStreamMaxMemory: 256 << 20,
				Cluster:            server.ClusterOpts{Name: "leadstream", Host: "127.0.0.1", Port: routePorts[i]},
				Routes:             routes,
			}
		})
	}
	for i := range n {
		c.Start(i)
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, s := range c.Servers {
			if s.JetStreamIsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no JetStream meta leader yet")
	})
	return c
}

// Start starts node i (again), on its ports and store.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i]())
	if err != nil {
		c.t.Fatalf("starting cluster node %d: %v", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		c.t.Fatalf("cluster node %d not ready after 30s", i+1)
	}
	c.Servers[i] = s
}

// Stop shuts node i down and waits until it is gone.
func (c *Cluster) Stop(i int) {
	c.Servers[i].Shutdown()
	c.Servers[i].WaitForShutdown()
}

// Index returns the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, s := range c.Servers {
		if s.Name() == name {
			return i
		}
	}
	return -1
}

// URLs is every node's client URL, comma-separated, for nats.url.
func (c *Cluster) URLs() string {
	var urls []string
	for i := range c.Servers {
		o := c.opts[i]()
		urls = append(urls, fmt.Sprintf("nats://%s:%d", o.Host, o.Port))
	}
	return strings.Join(urls, ",")
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// FreeAddr is a free 127.0.0.1:port for a test's server or child process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
}
