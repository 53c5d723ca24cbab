package main

import (
	"fmt"
	"io"
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
func openAudit(o *options, stdout io.Writer, key []byte) (*audit.Logger, io.Closer, error) {
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
		return openStdoutAudit(stdout, key)
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
func openStdoutAudit(stdout io.Writer, key []byte) (*audit.Logger, io.Closer, error) {
	var own io.WriteCloser
	if f, ok := stdout.(*os.File); ok {
		var err error
		if own, err = rawio.OpenPipe(f); err != nil {
			return nil, nil, fmt.Errorf("opening the audit sink on stdout: %w", err)
		}
	}
	if own == nil {
		l, err := audit.New(audit.NewWriterSink("stdout", stdout, nil), key)
		return l, nil, err
	}
	l, err := audit.New(audit.NewWriterSink("stdout", own, nil), key)
	if err != nil {
		own.Close()
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
