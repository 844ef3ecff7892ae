package supctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// runAsSupctl makes the test binary behave as supctl (TestMain), so that
// the completion scripts can call `supctl completion apps` through PATH.
const runAsSupctl = "SUPCTL_TEST_RUN_AS_SUPCTL"

// asSupctlEnv is the environment of a shell whose supctl is this test binary
// (PATH from supctlOnPath) talking to socket. GORACE drops the race
// runtime's default 1 s pause at exit from every completion under -race.
func asSupctlEnv(path, socket string) []string {
	return append(os.Environ(), "PATH="+path, runAsSupctl+"=1", "SUPCTL_SOCKET="+socket, "GORACE=atexit_sleep_ms=0")
}

func TestMain(m *testing.M) {
	if os.Getenv(runAsSupctl) == "1" {
		os.Exit(exitcode.Code(Run(os.Args[1:], os.Stdout, os.Stderr)))
	}
	os.Exit(m.Run())
}

// supctlOnPath returns a PATH whose supctl is this test binary.
func supctlOnPath(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(bin, "supctl")); err != nil {
		t.Fatal(err)
	}
	return bin + ":" + os.Getenv("PATH")
}

// serveFake serves the fake backend's control API on a Unix socket until
// the test ends and returns the socket's path.
func serveFake(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "c.sock")
	srv := &control.Server{Backend: backend{}}
	if err := srv.Listen(sock, -1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return sock
}

// TestBashCompletion sources `supctl completion bash` in a real bash, checks
// that it registered _supctl for supctl, and runs the function on command
// lines as bash's programmable completion would (COMP_WORDS, COMP_CWORD),
// with app names coming from a control server over a Unix socket.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("bash not installed: %v", err)
	}
	sock := serveFake(t)
	path := supctlOnPath(t)
	for _, tc := range []struct {
		line   string // the words typed; a trailing space starts a new, empty word
		socket string // $SUPCTL_SOCKET
		want   []string
	}{
		{"supctl ", sock, verbs},
		{"supctl re", sock, []string{"restart", "reload", "reread"}},
		{"supctl --v", sock, []string{"--version"}},
		{"supctl reload ", sock, []string{"web"}},
		{"supctl status w", sock, []string{"web"}},
		{"supctl status --", sock, []string{"--json"}},
		{"supctl reload web --strategy ", sock, strategies},
		{"supctl deploy web --strategy u", sock, []string{"usr2"}},
		{"supctl completion ", sock, shells},
		{"supctl -s " + sock + " stop ", "", []string{"web"}},
		{"supctl stop ", filepath.Join(t.TempDir(), "absent.sock"), nil},
		{"supctl stop web ", sock, nil},
	} {
		t.Run(tc.line, func(t *testing.T) {
			words := strings.Fields(tc.line)
			if strings.HasSuffix(tc.line, " ") {
				words = append(words, "")
			}
			script := `source <(supctl completion bash)
complete -p supctl
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_supctl
printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command(bash, append([]string{"--norc", "--noprofile", "-c", script, "bash"}, words...)...)
			cmd.Env = asSupctlEnv(path, tc.socket)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if lines[0] != "complete -F _supctl supctl" {
				t.Fatalf("complete -p supctl = %q, want %q", lines[0], "complete -F _supctl supctl")
			}
			var got []string
			for _, l := range lines[1:] {
				if l != "" {
					got = append(got, l)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("completions of %q = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestCompletionScripts checks that every shell has a script with no
// placeholder left, and that an unknown shell is a usage error.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range shells {
		s, err := CompletionScript(sh)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`@[A-Z_]+@`).MatchString(s) {
			t.Errorf("%s script keeps a placeholder:\n%s", sh, s)
		}
	}
	if err := Run([]string{"completion", "tcsh"}, &strings.Builder{}, &strings.Builder{}); exitcode.Code(err) != ExitUsage {
		t.Errorf("completion tcsh: %v, want exit %d", err, ExitUsage)
	}
}

// TestZshFishCompletion checks the zsh and fish scripts with each shell's
// parser (-n) and, in fish, completes verbs and app names with complete -C.
// Each shell is skipped when not installed (scripts/deps.sh does not add them).
func TestZshFishCompletion(t *testing.T) {
	for _, sh := range []string{"zsh", "fish"} {
		t.Run(sh, func(t *testing.T) {
			bin, err := exec.LookPath(sh)
			if err != nil {
				t.Skipf("%s not installed: %v", sh, err)
			}
			script, err := CompletionScript(sh)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "supctl."+sh)
			if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-n", file).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", sh, err, out)
			}
			if sh != "fish" {
				return
			}
			cmd := exec.Command(bin, "--no-config", "-c", `source $argv[1]; complete -C "supctl re"; complete -C "supctl reload "`, file)
			cmd.Env = asSupctlEnv(supctlOnPath(t), serveFake(t))
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("fish: %v\n%s", err, out)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				word, _, _ := strings.Cut(l, "\t") // fish appends a tab and a description
				got = append(got, word)
			}
			if want := []string{"reload", "reread", "restart", "web"}; !slices.Equal(got, want) {
				t.Errorf("fish completions = %q, want %q", got, want)
			}
		})
	}
}
