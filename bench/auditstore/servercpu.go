package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverCPU is the CPU time, in clock ticks, that the PostgreSQL server
// whose data directory is under dir has spent: its postmaster, the
// children it has reaped (cutime, cstime) and those still running. A
// measure of the store's own cost that a loaded machine does not distort
// the way a rate is.
func serverCPU(dir string) (int64, error) {
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	master := ""
	for _, p := range procs {
		cmd, err := os.ReadFile(p + "/cmdline")
		if err == nil && bytes.Contains(cmd, []byte(dir)) && strings.HasPrefix(filepath.Base(string(bytes.SplitN(cmd, []byte{0}, 2)[0])), "postgres") {
			master = filepath.Base(p)
			break
		}
	}
	if master == "" {
		return 0, fmt.Errorf("no postgres process with %s in its command line", dir)
	}
	var total int64
	for _, p := range procs {
		f, err := statFields(p)
		if err != nil {
			continue // gone meanwhile
		}
		switch {
		case filepath.Base(p) == master:
			total += f[13] + f[14] + f[15] + f[16] // utime stime cutime cstime
		case strconv.FormatInt(f[3], 10) == master:
			total += f[13] + f[14]
		}
	}
	return total, nil
}

// statFields are /proc/PID/stat's numeric fields, indexed as in proc(5)
// less one (f[3] is the parent's PID, f[13] utime); the command name,
// which may hold spaces, is skipped.
func statFields(p string) ([]int64, error) {
	b, err := os.ReadFile(p + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return nil, fmt.Errorf("%s/stat: no command name", p)
	}
	rest := strings.Fields(s[end+1:])
	out := make([]int64, 2, 2+len(rest))
	for _, x := range rest {
		n, _ := strconv.ParseInt(x, 10, 64)
		out = append(out, n)
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// selfCPU is the CPU time this process has spent, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
