package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pghistory"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/gateway/rawio"
)

// openAudit makes the audit logger the flags ask for: PostgreSQL with
// --audit-postgres-url-file, else --audit-file (stdout for "-"). It also
// returns the file to close after the logger, if it opened one.
func openAudit(o *options, stdout io.Writer, key []byte, log *slog.Logger) (*audit.Logger, io.Closer, error) {
	if o.auditPostgresURL != "" {
		url, err := readPostgresURL(o)
		if err != nil {
			return nil, nil, err
		}
		sink, err := pgsink.New(url, pgsink.WithApplicationName("popconnect-gateway"))
		if err != nil {
			return nil, nil, err // the error never holds the password
		}
		l, err := audit.New(sink, key)
		return l, nil, err
	}
	if o.auditFile == "" || o.auditFile == "-" {
		return openStdoutAudit(stdout, key, log)
	}
	f, err := os.OpenFile(o.auditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening audit file: %w", err)
	}
	var sync func() error
	if o.auditFsync {
		sync = f.Sync
	}
	l, err := audit.New(audit.NewWriterSink("file", f, sync), key)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return l, f, nil
}

// openStdoutAudit writes the records to stdout. In a pod stdout is a pipe
// to the container runtime, written through rawio.OpenPipe's writer: raw
// non-blocking writes that wait in the poller (why: see rawio.PipeWriter).
// The returned closer is that writer's own descriptor, if one was opened.
// A pipe that cannot be opened anew is written as it is, with a warning:
// the records are the same, each write costs more CPU.
func openStdoutAudit(stdout io.Writer, key []byte, log *slog.Logger) (*audit.Logger, io.Closer, error) {
	out, own := stdout, io.Closer(nil)
	if f, ok := stdout.(*os.File); ok {
		switch w, err := rawio.OpenPipe(f); {
		case err != nil:
			log.Warn("audit records on stdout go through its shared descriptor", "error", err)
		case w != nil:
			log.Info("audit records on stdout go through a non-blocking descriptor of the pipe of their own")
			out, own = w, w
		}
	}
	l, err := audit.New(audit.NewWriterSink("stdout", out, nil), key)
	if err != nil {
		if own != nil {
			own.Close()
		}
		return nil, nil, err
	}
	return l, own, nil
}

// readPostgresURL reads --audit-postgres-url-file.
func readPostgresURL(o *options) (string, error) {
	raw, err := os.ReadFile(o.auditPostgresURL)
	if err != nil {
		return "", fmt.Errorf("--audit-postgres-url-file: %w", err)
	}
	url := strings.TrimSpace(string(raw))
	if url == "" {
		return "", fmt.Errorf("--audit-postgres-url-file %s is empty", o.auditPostgresURL)
	}
	return url, nil
}

// openHistory opens the access history's read pool on the audit database,
// from the same URL file as the sink; nil without the PostgreSQL sink.
// It does not connect: the first AccessHistory request does.
func openHistory(o *options) (*pghistory.Store, error) {
	if o.auditPostgresURL == "" {
		return nil, nil
	}
	url, err := readPostgresURL(o)
	if err != nil {
		return nil, err
	}
	return pghistory.New(url)
}
