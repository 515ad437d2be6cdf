package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/dispatcher/demolms"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
)

// serveDemoLMS runs the demo LMS until ctx ends.
func serveDemoLMS(ctx context.Context, ln net.Listener, secret string, log *zap.Logger) error {
	srv := &http.Server{Handler: demolms.Handler([]string{secret}, os.Stdout, log.Named("demo-lms")), ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdDemoLMS(args []string) error {
	fs := flag.NewFlagSet("demo-lms", flag.ExitOnError)
	path := configFlag(fs)
	listen := fs.String("listen", "", "address (default: demo_lms.listen from the config, else 127.0.0.1:9000)")
	secret := fs.String("secret", "", "Standard Webhooks secret (default: demo_lms.secret from the config)")
	_ = fs.Parse(args)
	if *listen == "" || *secret == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		if *listen == "" {
			*listen = cfg.DemoLMS.Listen
		}
		if *secret == "" {
			*secret = cfg.DemoLMS.Secret
		}
	}
	if *listen == "" {
		*listen = "127.0.0.1:9000"
	}
	if *secret == "" {
		return errors.New("no secret: set --secret or demo_lms.secret")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("demo LMS on http://%s: verifying Standard Webhooks signatures, printing each event\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveDemoLMS(ctx, ln, *secret, zap.NewNop())
}

func cmdLead(args []string) error {
	if len(args) == 0 || args[0] != "show" {
		return errors.New("usage: leadstream lead show <aggregate id | key | lead id | event id>   e.g. offerte/lead/12345, or 12345")
	}
	fs := flag.NewFlagSet("lead show", flag.ExitOnError)
	path := configFlag(fs)
	pos := parseArgs(fs, args[1:])
	if len(pos) == 0 {
		return errors.New("usage: leadstream lead show <aggregate id | key | lead id | event id>")
	}
	if err := wantArgs("lead show", pos, 1); err != nil {
		return err
	}
	_, nc, js, err := opsConn(*path)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := leadState(context.Background(), js, pos[0])
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(st, "", "  ")
	fmt.Println(string(out))
	return nil
}

func leadState(ctx context.Context, js jetstream.JetStream, id string) (*leads.State, error) {
	kv, err := js.KeyValue(ctx, leads.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w (is the dispatcher running?)", leads.Bucket, err)
	}
	return leads.NewStore(kv).Get(ctx, id)
}

// serveLead answers GET /leads/{id} with the lead's projected state.
func serveLead(w http.ResponseWriter, r *http.Request, js jetstream.JetStream) {
	st, err := leadState(r.Context(), js, r.PathValue("id"))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case errors.Is(err, leads.ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no such lead"})
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	default:
		_ = json.NewEncoder(w).Encode(st)
	}
}
