package vcsfake

import (
	"fmt"
	"testing"
)

// ProcessTB lets the fakes run in a plain process (make invoke's fake
// GitHub, make bench-load): they use only Helper, Fatalf and Cleanup. The
// embedded nil TB is never called.
type ProcessTB struct {
	testing.TB
	// OnFatal is called with Fatalf's message; nil panics with it.
	OnFatal  func(msg string)
	cleanups []func()
}

// Helper does nothing outside a test.
func (p *ProcessTB) Helper() {}

// Fatalf hands the message to OnFatal, or panics with it.
func (p *ProcessTB) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf("vcsfake: "+format, args...)
	if p.OnFatal == nil {
		panic(msg)
	}
	p.OnFatal(msg)
}

// Cleanup registers f to run on Close.
func (p *ProcessTB) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

// Close runs the clean-ups, last registered first: it stops the fakes.
func (p *ProcessTB) Close() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	p.cleanups = nil
}
