package sdnotify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseListenEnv(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name    string
		env     map[string]string
		want    []Inherited
		wantErr string
	}{
		{name: "unset", env: map[string]string{}},
		{name: "other pid", env: map[string]string{envListenPID: "1", envListenFDs: "2"}},
		{name: "no fds var", env: map[string]string{envListenPID: "4242"}},
		{name: "zero fds", env: map[string]string{envListenPID: "4242", envListenFDs: "0"}},
		{
			name: "named",
			env:  map[string]string{envListenPID: "4242", envListenFDs: "2", envListenFDNames: "web:metrics"},
			want: []Inherited{{"web", 3}, {"metrics", 4}},
		},
		{
			name: "no names",
			env:  map[string]string{envListenPID: "4242", envListenFDs: "2"},
			want: []Inherited{{"unknown", 3}, {"unknown", 4}},
		},
		{
			name: "short and empty names",
			env:  map[string]string{envListenPID: "4242", envListenFDs: "3", envListenFDNames: ":api"},
			want: []Inherited{{"unknown", 3}, {"api", 4}, {"unknown", 5}},
		},
		{
			name:    "too many names",
			env:     map[string]string{envListenPID: "4242", envListenFDs: "1", envListenFDNames: "a:b"},
			wantErr: `LISTEN_FDNAMES="a:b" names 2 sockets but LISTEN_FDS=1`,
		},
		{name: "bad pid", env: map[string]string{envListenPID: "x"}, wantErr: `LISTEN_PID="x"`},
		{name: "bad count", env: map[string]string{envListenPID: "4242", envListenFDs: "-1"}, wantErr: `LISTEN_FDS="-1"`},
		{name: "huge count", env: map[string]string{envListenPID: "4242", envListenFDs: "99999999999"}, wantErr: `LISTEN_FDS="99999999999"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseListenEnv(func(k string) string { return tc.env[k] }, pid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	fds := []Inherited{{"web", 3}, {"metrics", 4}, {"dup", 5}, {"dup", 6}, {"7", 7}}
	tests := []struct {
		ref     string
		want    Inherited
		wantErr string
	}{
		{ref: "web", want: Inherited{"web", 3}},
		{ref: "metrics", want: Inherited{"metrics", 4}},
		{ref: "0", want: Inherited{"web", 3}},
		{ref: "3", want: Inherited{"dup", 6}},
		{ref: "7", want: Inherited{"7", 7}}, // a name wins over a position
		{ref: "5", wantErr: "no socket at position 5, systemd passed 5 (0=web (fd 3), 1=metrics (fd 4), 2=dup (fd 5), 3=dup (fd 6), 4=7 (fd 7))"},
		{ref: "dup", wantErr: `socket name "dup" is ambiguous`},
		{ref: "api", wantErr: `no socket named "api" (passed: 0=web (fd 3), 1=metrics (fd 4)`},
		{ref: "+1", wantErr: `no socket named "+1"`},
		{ref: "", wantErr: "empty socket reference"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := Lookup(fds, tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Lookup(%q) = %v, %v; want error containing %q", tc.ref, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Lookup(%q) = %v, %v; want %v", tc.ref, got, err, tc.want)
			}
		})
	}
	if _, err := Lookup(nil, "web"); err == nil || !strings.Contains(err.Error(), "passed: none") {
		t.Errorf("Lookup(nil) error = %v, want one saying nothing was passed", err)
	}
}

// TestListenFDsInChild passes a real listening TCP socket as fd 3 to a
// re-executed test binary, as systemd would, and talks to the child through it.
func TestListenFDsInChild(t *testing.T) {
	tests := []struct {
		name   string
		setPID bool // false: LISTEN_PID names the parent, so the child must ignore the fds
		want   []Inherited
	}{
		{name: "activated", setPID: true, want: []Inherited{{"web", 3}}},
		{name: "not for us", setPID: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer closeOrFail(t, ln)
			lnFile, err := ln.(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			defer closeOrFail(t, lnFile)

			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
			cmd.ExtraFiles = []*os.File{lnFile}
			cmd.Env = append(cleanEnv(),
				envHelper+"=1",
				envListenPID+"="+strconv.Itoa(os.Getpid()),
				envListenFDs+"=1",
				envListenFDNames+"=web",
			)
			if tc.setPID {
				cmd.Env = append(cmd.Env, envTestSetPID+"=1")
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := false
			defer func() {
				if waited {
					return
				}
				if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
					t.Errorf("kill helper: %v", err)
				}
				if err := cmd.Wait(); err != nil {
					t.Logf("helper after kill: %v (stderr: %s)", err, stderr.String())
				}
			}()

			out := bufio.NewReader(stdout)
			line, err := out.ReadBytes('\n')
			if err != nil {
				t.Fatalf("read helper report: %v (stderr: %s)", err, stderr.String())
			}
			var rep helperReport
			if err := json.Unmarshal(line, &rep); err != nil {
				t.Fatalf("decode helper report %q: %v", line, err)
			}
			if !reflect.DeepEqual(rep.FDs, tc.want) {
				t.Errorf("child ListenFDs = %v, want %v", rep.FDs, tc.want)
			}
			for i, c := range rep.CloExec {
				if !c {
					t.Errorf("fd %d not close-on-exec in child", rep.FDs[i].FD)
				}
			}
			if len(rep.Env) != 0 {
				t.Errorf("LISTEN_* left in child environment after ListenFDs(true): %v", rep.Env)
			}

			if tc.setPID {
				answer := ping(t, ln.Addr().String())
				if want := fmt.Sprintf("pong %d\n", rep.PID); answer != want {
					t.Errorf("answer %q, want %q", answer, want)
				}
			}
			if _, err := io.Copy(io.Discard, out); err != nil {
				t.Errorf("drain helper stdout: %v", err)
			}
			waited = true
			if err := cmd.Wait(); err != nil {
				t.Fatalf("helper: %v (stderr: %s)", err, stderr.String())
			}
		})
	}
}

// ping connects to addr, which only the child accepts on, and returns its answer.
func ping(t *testing.T, addr string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer closeOrFail(t, conn)
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read answer from %s: %v", addr, err)
	}
	return answer
}

// cleanEnv is this process's environment without anything systemd may have
// set for the test runner itself.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case envListenPID, envListenFDs, envListenFDNames, envNotifySocket, envWatchdogUsec, envWatchdogPID, envHelper, envTestSetPID:
		default:
			env = append(env, kv)
		}
	}
	return env
}

func closeOrFail(t *testing.T, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
