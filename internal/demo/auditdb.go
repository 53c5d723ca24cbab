package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/internal/testpg"
)

// auditDBSecret is the Secret holding the audit database's URL, as a
// platform team would create it.
const auditDBSecret = "audit-db"

// startAuditDatabase runs a PostgreSQL server of the demo's own, puts its
// URL in a Secret and points the PopulationGateway's audit at it.
func (r *runner) startAuditDatabase(ctx context.Context) error {
	// PostgreSQL refuses to run as root, so the cluster belongs to the
	// postgres user, in a directory of its own under the system's
	// temporary directory (the work dir, holding keys, is root's alone).
	dir, err := os.MkdirTemp("", "popconnect-demo-postgres-")
	if err != nil {
		return fmt.Errorf("creating the audit database's directory: %w", err)
	}
	r.dbDir = dir
	r.n.cmd("initdb -D " + filepath.Join(dir, "data") + " && postgres   # Debian's PostgreSQL server binaries, as user postgres, port chosen at random")
	db, err := testpg.New(dir)
	if err != nil {
		return err
	}
	r.db = db
	urlFile := filepath.Join(r.opts.WorkDir, "audit-db.url")
	if err := os.WriteFile(urlFile, []byte(db.URL()+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", urlFile, err)
	}
	if err := r.n.expect(true, "PostgreSQL accepts connections on 127.0.0.1:%d; its URL, password included, is in %s (mode 0600), never on a command line",
		db.Port(), r.rel(urlFile)); err != nil {
		return err
	}
	ns := r.opts.Namespace
	if _, err := r.kubectl(ctx, true, "create", "secret", "generic", auditDBSecret, "-n", ns, "--from-file=url="+r.rel(urlFile)); err != nil {
		return err
	}
	patch := `{"spec":{"audit":{"postgres":{"urlSecretRef":{"name":"` + auditDBSecret + `","key":"url"},"to":[{"ipBlock":{"cidr":"127.0.0.1/32"}}]}}}}`
	if _, err := r.kubectl(ctx, true, "patch", "populationgateway", gatewayName, "-n", ns, "--type=merge", "-p", patch); err != nil {
		return err
	}
	var args string
	cond := func(ctx context.Context) (bool, error) {
		out, err := r.kubectl(ctx, false, "get", "deployment", gatewayName+"-gateway", "-n", ns,
			"-o", `jsonpath={.spec.template.spec.containers[0].args}`)
		args = out
		return err == nil && strings.Contains(out, "--audit-postgres-url-file="), nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, cond, func() string { return "gateway Deployment args: " + args }); err != nil {
		return err
	}
	return r.n.expect(true, "the operator renders the gateway Deployment with the Secret's key mounted as a file and --audit-postgres-url-file, and opens egress to 127.0.0.1/32:5432 in its NetworkPolicy")
}

// stopAuditDatabase stops the server, keeps its log with the demo's other
// logs and removes its cluster.
func (r *runner) stopAuditDatabase() error {
	err := r.db.Close()
	if b, rerr := os.ReadFile(r.db.LogPath()); rerr == nil {
		err = errors.Join(err, os.WriteFile(filepath.Join(r.logDir(), "postgres.log"), b, 0o600))
	}
	return errors.Join(err, os.RemoveAll(r.dbDir))
}

// auditDBURLFile writes the URL file the gateway reads, taken from the
// Secret as its pod would mount it, and returns its path.
func (r *runner) auditDBURLFile(ctx context.Context) (string, error) {
	files, err := r.secretFiles(ctx, auditDBSecret, r.gatewayDir(), map[string]string{"url": filepath.Base(r.auditDBURLPath())})
	if err != nil {
		return "", err
	}
	return files["url"], nil
}

// auditDBURLPath is where auditDBURLFile writes the URL.
func (r *runner) auditDBURLPath() string { return filepath.Join(r.gatewayDir(), "audit-db.url") }

// auditRow reads one stored record's bytes and fields_returned column.
func (r *runner) auditRow(ctx context.Context, stream string, seq uint64) (string, []string, error) {
	conn, err := pgx.Connect(ctx, r.db.URL())
	if err != nil {
		return "", nil, fmt.Errorf("connecting to the audit database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var record string
	var fields []string
	err = conn.QueryRow(ctx, `SELECT record, fields_returned FROM `+pgsink.Table+` WHERE stream = $1 AND seq = $2`, stream, int64(seq)).Scan(&record, &fields)
	if err != nil {
		return "", nil, fmt.Errorf("reading audit record %s/%d: %w", stream, seq, err)
	}
	return record, fields, nil
}

// readAuditTable reads every record of the audit table in (stream, seq)
// order, each as the line a file sink would hold.
func (r *runner) readAuditTable(ctx context.Context) ([]auditLine, error) {
	conn, err := pgx.Connect(ctx, r.db.URL())
	if err != nil {
		return nil, fmt.Errorf("connecting to the audit database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var lines []auditLine
	err = pgsink.Scan(ctx, conn, func(row pgsink.Row) error {
		a := auditLine{raw: string(row.Line()), stream: row.Stream, seq: row.Seq}
		if err := json.Unmarshal(row.Record, &a); err != nil {
			return fmt.Errorf("audit record is not JSON: %q: %w", row.Record, err)
		}
		lines = append(lines, a)
		return nil
	})
	return lines, err
}

// execAuditDB runs one statement on the audit database, as an insider
// with write access to it could.
func (r *runner) execAuditDB(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, r.db.URL())
	if err != nil {
		return fmt.Errorf("connecting to the audit database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
