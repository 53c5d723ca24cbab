// Command pgserver runs a PostgreSQL server of its own (Debian's binaries,
// a cluster in a temporary directory, a free port) for the gateway
// benchmark's PostgreSQL audit sink: it writes the server's URL to
// --url-file, serves until SIGINT or SIGTERM, then stops the server and
// removes its cluster. Not for production use.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/popconnect/popconnect/internal/testpg"
)

func main() {
	urlFile := flag.String("url-file", "", "file to write the server's URL to (mode 0600)")
	flag.Parse()
	if *urlFile == "" {
		fmt.Fprintln(os.Stderr, "pgserver: --url-file is required")
		os.Exit(2)
	}
	if err := run(*urlFile); err != nil {
		fmt.Fprintln(os.Stderr, "pgserver:", err)
		os.Exit(1)
	}
}

func run(urlFile string) error {
	dir, err := os.MkdirTemp("", "popconnect-bench-postgres-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	srv, err := testpg.New(dir)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := os.WriteFile(urlFile, []byte(srv.URL()+"\n"), 0o600); err != nil {
		return err
	}
	<-sigs
	return nil
}
