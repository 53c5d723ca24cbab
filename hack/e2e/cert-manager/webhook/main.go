// Command webhook is cert-manager's admission webhook: the server, the
// admission chain (validation, the CertificateRequest identity and approval
// checks) and the flags are cert-manager's own, from the module version
// popconnect pins; only this entry point is ours, because the Go module
// proxy does not serve cert-manager's cmd/webhook module (README.md).
package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"

	"github.com/cert-manager/cert-manager/cmd/popconnect-e2e/internal/cmd"
	cmwebhook "github.com/cert-manager/cert-manager/internal/webhook"
	"github.com/cert-manager/cert-manager/pkg/webhook/options"
)

func main() {
	fs := pflag.NewFlagSet("webhook", pflag.ContinueOnError)
	flags := options.NewWebhookFlags()
	cfg, err := options.NewWebhookConfiguration()
	if err != nil {
		panic(err) // cert-manager's own defaults failed to convert: a build fault
	}
	flags.AddFlags(fs)
	// AddConfigFlags adds the logging flags too, into cfg.Logging.
	options.AddConfigFlags(fs, cfg)
	cmd.Main("webhook", fs, &cfg.Logging, func(ctx context.Context, log logr.Logger) error {
		if flags.Config != "" {
			// The chart passes --config only when its webhook.config value
			// is set, which the e2e install does not do.
			return fmt.Errorf("--config is not supported by this build")
		}
		srv, err := cmwebhook.NewCertManagerWebhookServer(log, *cfg)
		if err != nil {
			return fmt.Errorf("creating the webhook server: %w", err)
		}
		return srv.Run(ctx)
	})
}
