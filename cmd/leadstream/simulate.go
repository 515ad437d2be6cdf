package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

func cmdSimulate(args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ExitOnError)
	path := configFlag(fs)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the edge")
	_ = fs.Parse(args)
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	signer, err := simulate.NewSigner(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failed := 0
	for _, r := range simulate.Run(ctx, &http.Client{Timeout: 15 * time.Second}, *url, signer) {
		if r.Err != nil {
			failed++
			fmt.Printf("%-40s %-12s error: %v\n", r.Sample, r.Source, r.Err)
			continue
		}
		if r.Status/100 != 2 {
			failed++
		}
		fmt.Printf("%-40s %-12s %d %s\n", r.Sample, r.Source, r.Status, r.Body)
	}
	if failed > 0 {
		return fmt.Errorf("%d webhooks were not accepted", failed)
	}
	return nil
}
