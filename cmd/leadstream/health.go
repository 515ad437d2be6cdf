package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// cmdHealth asks one of leadstream's health endpoints and exits 0 when it
// answers 2xx: the container health check of an image that has no shell
// and no curl (docker-compose's healthcheck: ["CMD", "/leadstream",
// "health", "http://127.0.0.1:9090/readyz"]).
func cmdHealth(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: leadstream health <url>, e.g. http://127.0.0.1:8080/readyz")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", args[0], resp.Status)
	}
	return nil
}
