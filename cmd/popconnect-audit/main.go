// Command popconnect-audit works on a gateway's audit trail.
//
//	popconnect-audit verify --file PATH --key-file PATH [--trust-head]
//
// verify proves that every stream of records (one per gateway process
// start) runs from seq 1 without a gap, a repeat or a swap, and that each
// record's chain matches under the gateway's audit key. It prints one line
// per stream and a verdict, and exits 0 when every stream is intact, 1 when
// one is not (or there is no record at all), 2 on a usage or read error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/gateway/audit/verify"
)

// Exit codes.
const (
	exitIntact = 0
	exitBroken = 1
	exitUsage  = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

const usage = `usage: popconnect-audit verify --key-file PATH (--file PATH | --postgres-url URL | --postgres-url-file PATH) [--trust-head]

verify checks the audit records' sequence and chain, stream by stream.
Exit status: 0 every stream intact, 1 a stream broken or no record found,
2 a usage or read error.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, usage)
			return exitIntact
		}
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	return runVerify(args[1:], stdin, stdout, stderr)
}

// verifyConfig is verify's flags.
type verifyConfig struct {
	file        string
	keyFile     string
	postgresURL string
	urlFile     string
	trustHead   bool
}

func runVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c verifyConfig
	fs := flag.NewFlagSet("popconnect-audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.file, "file", "", "audit file to verify, as the gateway wrote it (- for stdin)")
	fs.StringVar(&c.keyFile, "key-file", "", "the gateway's audit hash key (the raw bytes of Secret <gw>-audit-key, data key `key`)")
	fs.StringVar(&c.postgresURL, "postgres-url", "", "verify the records of the gateway's PostgreSQL audit table instead of a file")
	fs.StringVar(&c.urlFile, "postgres-url-file", "", "as --postgres-url, the URL read from this file (surrounding whitespace ignored), so that its password is not in the command line")
	fs.BoolVar(&c.trustHead, "trust-head", false,
		"accept streams whose first records were removed by retention: the first record present of each such stream is trusted unchecked")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitIntact
		}
		return exitUsage
	}
	if c.urlFile != "" && c.postgresURL == "" {
		raw, err := os.ReadFile(c.urlFile)
		if err != nil {
			fmt.Fprintln(stderr, "popconnect-audit verify: --postgres-url-file:", err)
			return exitUsage
		}
		c.postgresURL = strings.TrimSpace(string(raw))
		if c.postgresURL == "" {
			fmt.Fprintf(stderr, "popconnect-audit verify: --postgres-url-file %s is empty\n", c.urlFile)
			return exitUsage
		}
	} else if c.urlFile != "" {
		fmt.Fprintln(stderr, "popconnect-audit verify: give one of --postgres-url and --postgres-url-file")
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "popconnect-audit verify: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case c.keyFile == "":
		fmt.Fprintln(stderr, "popconnect-audit verify: --key-file is required")
		return exitUsage
	case (c.file == "") == (c.postgresURL == ""):
		fmt.Fprintln(stderr, "popconnect-audit verify: give one of --file and --postgres-url")
		return exitUsage
	}
	key, err := audit.ReadKeyFile(c.keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "popconnect-audit verify:", err)
		return exitUsage
	}
	src, closeSrc, err := openSource(&c, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "popconnect-audit verify:", err)
		return exitUsage
	}
	defer closeSrc()
	rep, err := verify.Run(src, key, verify.Options{TrustHead: c.trustHead})
	if err != nil {
		fmt.Fprintln(stderr, "popconnect-audit verify:", err)
		return exitUsage
	}
	return printReport(stdout, rep)
}

// openSource returns the records to verify and how to release them. Each
// kind of audit sink the gateway writes to has its source here: a file
// (verify.FileSource), and a PostgreSQL table, whose source yields the rows
// ordered by stream, then seq, with their stream and seq columns set in
// each verify.Entry.
func openSource(c *verifyConfig, stdin io.Reader) (verify.Source, func() error, error) {
	switch {
	case c.postgresURL != "":
		src, err := pgsink.NewSource(context.Background(), c.postgresURL)
		if err != nil {
			return nil, nil, err
		}
		return src, src.Close, nil
	case c.file == "-":
		return verify.NewFileSource(stdin), func() error { return nil }, nil
	default:
		f, err := os.Open(c.file)
		if err != nil {
			return nil, nil, err
		}
		return verify.NewFileSource(f), f.Close, nil
	}
}

// maxListed bounds the fragment locations printed.
const maxListed = 20

// printReport writes one line per stream and the verdict, and returns the
// exit status.
func printReport(w io.Writer, r *verify.Report) int {
	var records uint64
	for _, s := range r.Streams {
		records += s.Records
		fmt.Fprintln(w, streamLine(s))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s: %s\n", p.Loc, p.Message)
	}
	if n := len(r.Fragments); n > 0 {
		locs := make([]string, 0, min(n, maxListed))
		for _, f := range r.Fragments[:min(n, maxListed)] {
			l := f.Loc
			if f.Note != "" {
				l += " (" + f.Note + ")"
			}
			locs = append(locs, l)
		}
		more := ""
		if n > maxListed {
			more = fmt.Sprintf(" and %d more", n-maxListed)
		}
		fmt.Fprintf(w, "fragments: %d cut record(s) skipped, not a failure by themselves: %s%s\n", n, strings.Join(locs, ", "), more)
	}
	broken := r.Broken()
	switch {
	case len(r.Streams) == 0 && len(r.Problems) == 0:
		fmt.Fprintln(w, "verdict: NOTHING PROVEN: no audit record found")
		return exitBroken
	case r.Intact():
		fmt.Fprintf(w, "verdict: INTACT: %d stream(s), %d record(s). The chain cannot show records cut from the end of a stream or a stream removed whole: compare each stream's last seq with the gateway's popconnect_gateway_audit_last_seq\n",
			len(r.Streams), records)
		return exitIntact
	}
	var names []string
	for _, s := range broken {
		names = append(names, fmt.Sprintf("stream %s at seq %d", s.Stream, s.Failure.Seq))
	}
	if len(r.Problems) > 0 {
		names = append(names, fmt.Sprintf("%d record(s) without a valid stream and seq", len(r.Problems)))
	}
	hint := ""
	if allFailAtFirst(r) {
		hint = ". Every stream fails at its first record: check that --key-file is this gateway's audit key"
	}
	fmt.Fprintf(w, "verdict: BROKEN: %s%s\n", strings.Join(names, "; "), hint)
	return exitBroken
}

func streamLine(s *verify.StreamReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stream %s: ", s.Stream)
	switch {
	case s.Failure != nil:
		fmt.Fprintf(&b, "BROKEN at seq %d (%s): %s; ", s.Failure.Seq, s.Failure.Loc, s.Failure.Message)
		if s.Verified >= s.FirstSeq && s.Verified > 0 {
			fmt.Fprintf(&b, "seq %d to %d verified", s.FirstSeq, s.Verified)
			if s.Anchored {
				fmt.Fprintf(&b, " (its head was removed; seq %d trusted, unchecked)", s.FirstSeq)
			}
			b.WriteString("; ")
		} else {
			b.WriteString("nothing verified; ")
		}
	case s.Anchored:
		fmt.Fprintf(&b, "intact from seq %d (its head was removed; seq %d trusted, unchecked); ", s.FirstSeq, s.FirstSeq)
	default:
		b.WriteString("intact; ")
	}
	fmt.Fprintf(&b, "%d record(s), last seq %d, time %s to %s", s.Records, s.LastSeq, orDash(s.FirstTime), orDash(s.LastTime))
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// allFailAtFirst reports whether every stream failed at its first record
// with a chain that does not match: the sign of the wrong key.
func allFailAtFirst(r *verify.Report) bool {
	if len(r.Streams) == 0 {
		return false
	}
	for _, s := range r.Streams {
		if s.Failure == nil || s.Verified != 0 || s.Failure.Seq != 1 || !strings.Contains(s.Failure.Message, "chain does not match") {
			return false
		}
	}
	return true
}
