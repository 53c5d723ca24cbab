package demo

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ANSI styles, used only when Options.Color is set (Out is a terminal), so
// transcripts written to files or buffers stay plain text.
const (
	styleBold  = "\x1b[1m"
	styleDim   = "\x1b[2m"
	styleGreen = "\x1b[32m"
	styleRed   = "\x1b[31m"
	styleCyan  = "\x1b[36m"
	styleReset = "\x1b[0m"
)

// narrator writes the transcript: numbered sections, the commands run, and
// the checked outcome of every step.
type narrator struct {
	out     io.Writer
	color   bool
	total   int
	section int
	started time.Time // of the current section
}

func (n *narrator) style(s, text string) string {
	if !n.color {
		return text
	}
	return s + text + styleReset
}

// begin opens a numbered section with its title and a one-line
// explanation of what the step shows.
func (n *narrator) begin(title, why string) {
	n.section++
	n.started = time.Now()
	fmt.Fprintf(n.out, "\n%s %s\n", n.style(styleBold+styleCyan, fmt.Sprintf("[%d/%d]", n.section, n.total)), n.style(styleBold, title))
	fmt.Fprintf(n.out, "      %s\n", n.style(styleDim, why))
}

// cmd shows a command as a user would type it.
func (n *narrator) cmd(line string) {
	fmt.Fprintf(n.out, "  %s %s\n", n.style(styleBold, "$"), line)
}

// info prints a plain line of the section.
func (n *narrator) info(format string, args ...any) {
	fmt.Fprintf(n.out, "    %s\n", fmt.Sprintf(format, args...))
}

// block prints multi-line output (command output, JSON) indented.
func (n *narrator) block(text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(n.out, "      %s\n", line)
	}
}

// ok records a narrated expectation that held.
func (n *narrator) ok(format string, args ...any) {
	fmt.Fprintf(n.out, "  %s %s\n", n.style(styleGreen, "✓"), fmt.Sprintf(format, args...))
}

// fail prints a failed expectation; the caller returns the error.
func (n *narrator) fail(err error) {
	fmt.Fprintf(n.out, "  %s %s\n", n.style(styleRed, "✗"), err)
}

// since is the time spent in the current section, rounded for reading.
func (n *narrator) since() time.Duration {
	return time.Since(n.started).Round(10 * time.Millisecond)
}

// expect turns a narrated claim into a check: it prints a tick when cond
// holds and returns an error naming the claim otherwise.
func (n *narrator) expect(cond bool, claim string, args ...any) error {
	msg := fmt.Sprintf(claim, args...)
	if !cond {
		err := fmt.Errorf("step %d: expected %s", n.section, msg)
		n.fail(err)
		return err
	}
	n.ok("%s", msg)
	return nil
}
