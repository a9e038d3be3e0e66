package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even is the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny p is the min", ms(1, 2, 3), 0.1, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSortedCopy(t *testing.T) {
	in := []time.Duration{3, 1, 2}
	got := sortedCopy(in)
	if got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("sortedCopy = %v, want [1 2 3]", got)
	}
	if in[0] != 3 {
		t.Errorf("sortedCopy changed its input: %v", in)
	}
}

// A real line from /proc/<pid>/stat, and one whose command name holds
// spaces and parentheses.
const (
	statLine  = "12345 (forgelink-loca) S 12000 12345 12000 34816 12345 4194560 5303 0 0 0 431 57 0 0 20 0 9 0 1234567 1451421696 6123 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	statOddly = "777 (a b) (c)) R 1 700 700 0 -1 4194304 10 0 0 0 5 3 1 1 20 0 1 0 99 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name      string
		line      string
		pgrp      int
		ticks     uint64
		errSubstr string
	}{
		{"real", statLine, 12345, 431 + 57, ""},
		{"name with spaces and parens", statOddly, 700, 5 + 3, ""},
		{"no name", "1 S 0 1", 0, 0, "no ')'"},
		{"truncated", "1 (x) S 0 1 1 0 -1 0 0 0 0", 0, 0, "fields"},
		{"bad utime", "1 (x) S 0 1 1 0 -1 0 0 0 0 0 x 2 0 0", 0, 0, "utime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgrp, ticks, err := parseStat([]byte(tc.line))
			if tc.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("parseStat error = %v, want one mentioning %q", err, tc.errSubstr)
				}
				return
			}
			if err != nil || pgrp != tc.pgrp || ticks != tc.ticks {
				t.Errorf("parseStat = %d, %d, %v; want %d, %d", pgrp, ticks, err, tc.pgrp, tc.ticks)
			}
		})
	}
}

func TestGroupCPU(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, line string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("700", "700 (leader) S 1 700 700 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0 1 0 0\n")          // 200 ticks
	write("701", "701 (child) S 700 700 700 0 -1 0 0 0 0 0 30 20 0 0 20 0 1 0 1 0 0\n")          // 50 ticks, same group
	write("800", "800 (other) S 1 800 800 0 -1 0 0 0 0 0 999 999 0 0 20 0 1 0 1 0 0\n")          // another group
	write("self", "700 (not a pid dir) S 1 700 700 0 -1 0 0 0 0 0 999 999 0 0 20 0 1 0 1 0 0\n") // ignored
	if err := os.MkdirAll(filepath.Join(proc, "900"), 0o755); err != nil {                       // exited: no stat
		t.Fatal(err)
	}

	got, err := groupCPU(proc, 700)
	if want := 250 * time.Second / clockTicks; err != nil || got != want {
		t.Errorf("groupCPU(700) = %v, %v; want %v", got, err, want)
	}
	if _, err := groupCPU(proc, 701); err == nil {
		t.Error("groupCPU(701): no error for a group whose leader is not running")
	}
}

// TestParseStatSelf parses this process's line from the real /proc.
func TestParseStatSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if pgrp, _, err := parseStat(b); err != nil || pgrp <= 0 {
		t.Fatalf("parseStat(/proc/self/stat) = pgrp %d, %v", pgrp, err)
	}
}
