// Command demo runs popconnect end to end on a local control plane (see
// internal/demo). `make demo` runs it; KEEP=1 (-keep) leaves it running.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/popconnect/popconnect/internal/demo"
)

func main() {
	keep := flag.Bool("keep", false, "leave everything running after the scenario until Ctrl-C")
	workDir := flag.String("work-dir", "", "kubeconfig, certificates, audit and logs (default <repo>/.demo)")
	binDir := flag.String("bin-dir", "", "directory holding manager, gateway and popdb-sim (default <repo>/bin)")
	color := flag.String("color", "auto", "auto, always or never")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := demo.Run(ctx, demo.Options{
		Out:     os.Stdout,
		Keep:    *keep,
		Color:   *color == "always" || *color == "auto" && isTerminal(os.Stdout),
		WorkDir: *workDir,
		BinDir:  *binDir,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// isTerminal reports whether f is a character device (a terminal), which
// is all colour needs to know; NO_COLOR turns colour off as usual.
func isTerminal(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
