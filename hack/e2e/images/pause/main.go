// Command pause is the e2e cluster's sandbox ("pause") image: it holds a
// pod's namespaces open and exits on SIGTERM or SIGINT. The registry that
// serves the usual pause image is not reachable from our build machines.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// As PID 1 of the sandbox it may inherit orphans; reap them.
	signal.Ignore(syscall.SIGCHLD)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
