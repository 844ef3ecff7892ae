package sdnotify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Environment of the re-executed test binary (see TestMain).
const (
	// envHelper=1 makes the test binary act as a socket-activated service.
	envHelper = "SDNOTIFY_HELPER"
	// envTestSetPID=1 makes the helper set LISTEN_PID to its own pid before
	// calling ListenFDs. TEST ONLY: systemd sets LISTEN_PID after fork, but
	// os/exec cannot know the child's pid before it runs; a real service
	// never needs (or should do) this.
	envTestSetPID = "SDNOTIFY_TEST_SETPID"
)

// helperReport is what the helper prints as one JSON line on stdout.
type helperReport struct {
	PID     int
	FDs     []Inherited
	CloExec []bool
	// Env is LISTEN_* as left in the helper's environment by ListenFDs(true).
	Env map[string]string
}

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "1" {
		if err := listenHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "sdnotify helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// listenHelper is a minimal socket-activated service: it takes its sockets
// with ListenFDs, reports them, and when it got "web", serves one connection
// on it, answering "pong <pid>\n" to one line, to prove the fd is a live listener.
func listenHelper() error {
	if os.Getenv(envTestSetPID) == "1" {
		if err := os.Setenv(envListenPID, fmt.Sprint(os.Getpid())); err != nil {
			return fmt.Errorf("set %s: %w", envListenPID, err)
		}
	}
	fds, err := ListenFDs(true)
	if err != nil {
		return err
	}
	report := helperReport{PID: os.Getpid(), FDs: fds, Env: map[string]string{}}
	for _, in := range fds {
		flags, err := unix.FcntlInt(uintptr(in.FD), unix.F_GETFD, 0)
		if err != nil {
			return fmt.Errorf("F_GETFD fd %d: %w", in.FD, err)
		}
		report.CloExec = append(report.CloExec, flags&unix.FD_CLOEXEC != 0)
	}
	for _, name := range []string{envListenPID, envListenFDs, envListenFDNames} {
		if v, ok := os.LookupEnv(name); ok {
			report.Env[name] = v
		}
	}
	line, err := json.Marshal(report)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if _, err := fmt.Printf("%s\n", line); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if len(fds) == 0 {
		return nil
	}
	web, err := Lookup(fds, "web")
	if err != nil {
		return err
	}
	return serveOne(web)
}

func serveOne(in Inherited) (err error) {
	f := os.NewFile(uintptr(in.FD), in.Name)
	ln, err := net.FileListener(f)
	if cerr := f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("listener from fd %d (%s): %w", in.FD, in.Name, err)
	}
	defer func() {
		if cerr := ln.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close listener: %w", cerr)
		}
	}()
	// A hang guard: the parent connects as soon as it has read the report.
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	conn, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept on %s: %w", in.Name, err)
	}
	defer func() {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close connection: %w", cerr)
		}
	}()
	msg, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	if msg != "ping\n" {
		return fmt.Errorf("request %q, want ping", msg)
	}
	if _, err := fmt.Fprintf(conn, "pong %d\n", os.Getpid()); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}
