// Package cmd holds what the three commands share: cert-manager's logging
// flags, a context that ends on SIGTERM (the kubelet's stop), and the exit
// status.
package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"

	logf "github.com/cert-manager/cert-manager/pkg/logs"
)

// AddLoggingFlags adds cert-manager's logging flags (--v, which its chart
// passes, --logging-format...) to fs, bound to c.
func AddLoggingFlags(fs *pflag.FlagSet, c *logsapi.LoggingConfiguration) {
	logf.AddFlags(c, fs)
}

// Main parses the command line into fs, applies the logging options and
// calls run with a context that is cancelled on SIGINT or SIGTERM. A failed
// run exits with status 1.
func Main(name string, fs *pflag.FlagSet, logging *logsapi.LoggingConfiguration, run func(context.Context, logr.Logger) error) {
	logf.InitLogs()
	if err := fs.Parse(os.Args[1:]); err != nil {
		fail(name, err)
	}
	if err := logf.ValidateAndApply(logging); err != nil {
		fail(name, fmt.Errorf("logging options: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := logf.Log.WithName(name)
	err := run(logf.NewContext(ctx, log), log)
	stop()
	logf.FlushLogs()
	if err != nil {
		fail(name, err)
	}
}

func fail(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}
