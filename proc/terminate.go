package proc

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Terminate ends the processes list returns: it sends each SIGTERM, calls
// list every poll until it returns none, and once grace has passed sends
// SIGKILL to each of them and its descendants and polls for up to grace
// more. It returns the PIDs still listed at the end (nil when all are gone).
// list is called again after every signal round, so processes that appear
// meanwhile are ended too.
func Terminate(list func() []int, grace, poll time.Duration) []int {
	left := list()
	if len(left) == 0 {
		return nil
	}
	for _, pid := range left {
		_ = unix.Kill(pid, unix.SIGTERM) // ESRCH: already gone
	}
	if left = waitGone(list, grace, poll); len(left) == 0 {
		return nil
	}
	for _, pid := range left {
		SignalTree(pid, unix.SIGKILL)
	}
	return waitGone(list, grace, poll)
}

// waitGone polls list until it is empty or d has passed; it returns the last list.
func waitGone(list func() []int, d, poll time.Duration) []int {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		left := list()
		if len(left) == 0 || !time.Now().Before(deadline) {
			return left
		}
		<-tick.C
	}
}

// OwnChildren returns the live children of the calling process that keep
// accepts (nil keeps all): at the supervisor, its managed processes and the
// orphans that re-parented to it as PID 1 or child subreaper.
func OwnChildren(keep func(pid, pgid int) bool) []int {
	t, err := NewTree("")
	if err != nil {
		return nil
	}
	var out []int
	for _, pid := range t.LiveChildren(os.Getpid()) {
		if st, ok := t.Stat(pid); ok && (keep == nil || keep(pid, st.PGRP)) {
			out = append(out, pid)
		}
	}
	return out
}

// killWait bounds AwaitStop's wait after its kill.
const killWait = 5 * time.Second

// AwaitStop waits for done to close: up to timeout (or until ctx ends),
// then it calls kill and waits up to 5 s more. It returns nil once done has
// closed, or an error saying the process outlived the kill (the caller
// names it). The shared second half of every stop: ask, wait, KILL, wait.
func AwaitStop(ctx context.Context, done <-chan struct{}, timeout time.Duration, kill func()) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	kill()
	k := time.NewTimer(killWait)
	defer k.Stop()
	select {
	case <-done:
		return nil
	case <-k.C:
		return fmt.Errorf("still alive %s after SIGKILL", killWait)
	}
}
