package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go runs on.
const clockTicks = 100

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order; 0 for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// sortedCopy returns ds sorted ascending, leaving ds as it is.
func sortedCopy(ds []time.Duration) []time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s
}

// parseStat reads the process group and utime+stime (clock ticks) from the
// contents of /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(b []byte) (pgrp int, ticks uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no ')' after the command name")
	}
	// After ")": state(3) ppid(4) pgrp(5) session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15) ...
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	pgrp, err = strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, fmt.Errorf("stat: pgrp: %w", err)
	}
	utime, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat: stime: %w", err)
	}
	return pgrp, utime + stime, nil
}

// groupCPU returns the CPU time (utime+stime) of every live process in the
// process group pgid, read from procDir (normally /proc). The group's
// leader must be alive.
func groupCPU(procDir string, pgid int) (time.Duration, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return 0, err
	}
	var ticks uint64
	leader := false
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		pg, t, err := parseStat(b)
		if err != nil || pg != pgid {
			continue
		}
		ticks += t
		leader = leader || pid == pgid
	}
	if !leader {
		return 0, fmt.Errorf("process group %d: leader %d is not running", pgid, pgid)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
