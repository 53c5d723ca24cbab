// Command gateway is the popconnect data plane: an mTLS gateway in front of
// the population-database API that enforces each agency's policy and audits
// every request.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	_ "time/tzdata" // quota days need the zone database even in distroless images
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// listening reports the bound addresses, for tests that listen on port 0.
type listening func(agencyAddr, metricsAddr string)

func run(ctx context.Context, args []string, stdout, stderr io.Writer, onListen listening) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	s, err := newServer(ctx, opts, stdout, stderr)
	if err != nil {
		return err
	}
	return s.serve(ctx, onListen)
}
