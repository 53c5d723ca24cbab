// Command popdb-sim serves a synthetic population-database API: citizens
// derived deterministically from --seed, --records of them, none stored.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/popconnect/popconnect/internal/popdb"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "popdb-sim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("popdb-sim", flag.ContinueOnError)
	listen := fs.String("listen-address", ":8080", "address to serve the API on")
	seed := fs.Uint64("seed", 1, "seed the citizens are derived from")
	records := fs.Int64("records", 1_000_000, "number of citizens served; IDs beyond are 404")
	certFile := fs.String("tls-cert-file", "", "serve HTTPS with this certificate (PEM); plain HTTP when empty")
	keyFile := fs.String("tls-key-file", "", "private key of --tls-cert-file (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	gen, err := popdb.NewGenerator(*seed, *records)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv := &http.Server{
		Addr:              *listen,
		Handler:           popdb.Handler(gen),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		log.Info("serving", "address", *listen, "records", *records, "tls", *certFile != "")
		if *certFile != "" {
			errc <- srv.ListenAndServeTLS(*certFile, *keyFile)
		} else {
			errc <- srv.ListenAndServe()
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
