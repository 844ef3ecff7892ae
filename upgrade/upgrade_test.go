package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
)

func testConfig(t *testing.T, text string) (*config.Config, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "supervisor.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

const twoListeners = `
[app.web]
allow_root = true
kind = "process"
command = ["/bin/true"]
listen = ["tcp://127.0.0.1:8001", "tcp://127.0.0.1:8002"]
`

func TestValidate(t *testing.T) {
	cfg, _ := testConfig(t, twoListeners)
	good := func() *Handover {
		return &Handover{Version: HandoverVersion, Sockets: map[string][]SocketHandover{
			"web": {{Raw: "tcp://127.0.0.1:8001", FD: 3}, {Raw: "tcp://127.0.0.1:8002", FD: 4}},
		}, Apps: []AppHandover{{Name: "web", Gen: &GenHandover{ID: 1, PID: 10, OutFD: 5, ErrFD: 6, AccessFD: 7, FollowsLink: true}}}}
	}
	tests := []struct {
		name    string
		change  func(h *Handover)
		wantErr string
	}{
		{"matching", func(*Handover) {}, ""},
		{"other version", func(h *Handover) { h.Version++ }, "handover state version"},
		{"missing listener", func(h *Handover) { h.Sockets["web"] = h.Sockets["web"][:1] }, "1 listeners handed over, configuration has 2"},
		{"other order", func(h *Handover) { s := h.Sockets["web"]; s[0], s[1] = s[1], s[0] }, "does not match configured"},
		{"unknown running app", func(h *Handover) { h.Apps = append(h.Apps, AppHandover{Name: "gone", Gen: &GenHandover{}}) }, "app gone runs but is not in the configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			tt.change(h)
			err := h.Validate(cfg)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
	if got := good().FDs(); len(got) != 5 {
		t.Errorf("FDs = %v, want the two sockets, the two output pipes and the access pipe", got)
	}
	steered := good()
	steered.Sockets["web"][0].Steer = &listen.SteerHandover{SocketsFD: 10, ServingFD: 11, ProgFD: 12,
		Sockets: []listen.GenSocketHandover{{FD: 13, Slot: 0, Gens: []int{1}}}}
	if err := steered.Validate(cfg); err != nil {
		t.Errorf("Validate of a state with steering: %v", err)
	}
	if got := steered.FDs(); !slices.Equal(got, []int{3, 10, 11, 12, 13, 4, 5, 6, 7}) {
		t.Errorf("FDs with steering = %v, want the sockets, the steering's maps, program and generation socket, the pipes", got)
	}
}

// TestStateThroughMemfd: the state written to a memfd is what ReadState
// reads back in the next image, FollowsLink included, and ReadState removes
// the variable naming it.
func TestStateThroughMemfd(t *testing.T) {
	st := &State{FromVersion: "v1", Config: "/etc/s.toml", Statsd: map[string]int{"web": 7},
		Manager: &Handover{Version: HandoverVersion, Apps: []AppHandover{{Name: "web", Gen: &GenHandover{ID: 2, PID: 42, OutFD: 8, ErrFD: 9, AccessFD: 10, FollowsLink: true}}}}}
	fd, err := WriteMemfd(st)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	t.Setenv(EnvState, strconv.Itoa(fd))
	got, gotFD, err := ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := os.LookupEnv(EnvState); ok {
		t.Errorf("%s still set after ReadState", EnvState)
	}
	if g := got.Manager.Apps[0].Gen; g.OutFD != 8 || g.ErrFD != 9 || g.AccessFD != 10 {
		t.Errorf("output descriptors %d, %d, %d after the round trip, want 8, 9, 10", g.OutFD, g.ErrFD, g.AccessFD)
	}
	if gotFD != fd || got.FromVersion != "v1" || !got.Manager.Apps[0].Gen.FollowsLink {
		t.Errorf("ReadState = %+v (fd %d), want v1 with FollowsLink (fd %d)", got, gotFD, fd)
	}
	if sfd, ok := got.StatsdFD("web"); !ok || sfd != 7 {
		t.Errorf("StatsdFD(web) = %d %v, want 7", sfd, ok)
	}
	var none *State
	if _, ok := none.StatsdFD("web"); ok {
		t.Error("StatsdFD of a nil state found a descriptor")
	}
}

// TestCheck: the new binary's dry run accepts a state matching the
// configuration and names its digest, and marks a configuration that does
// not load with ErrConfig.
func TestCheck(t *testing.T) {
	_, cfgPath := testConfig(t, twoListeners)
	st := State{FromVersion: "v1", Manager: &Handover{Version: HandoverVersion, Sockets: map[string][]SocketHandover{
		"web": {{Raw: "tcp://127.0.0.1:8001", FD: 3}, {Raw: "tcp://127.0.0.1:8002", FD: 4}},
	}}}
	b, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	line, err := Check(cfgPath, statePath, "supervisor v2 "+VersionSuffix())
	if err != nil || !strings.Contains(line, digest(b)) {
		t.Errorf("Check = %q, %v; want a line naming %s", line, err, digest(b))
	}
	if _, err := Check(filepath.Join(t.TempDir(), "missing.toml"), statePath, "v2"); !errors.Is(err, ErrConfig) {
		t.Errorf("Check with a missing configuration: %v, want ErrConfig", err)
	}
	if _, err := Check(cfgPath, "", "v2"); !errors.Is(err, ErrConfig) {
		t.Errorf("Check without -state: %v, want ErrConfig", err)
	}
}

// TestDryRunRemovesCheckFile: a dry run that fails, because the new binary
// refuses or because the state file cannot be written in full, leaves no
// upgrade-check.json in run_dir.
func TestDryRunRemovesCheckFile(t *testing.T) {
	st := &State{FromVersion: "v1", Config: "/nonexistent.toml", Manager: &Handover{Version: HandoverVersion}}
	t.Run("the new binary refuses", func(t *testing.T) {
		dir := t.TempDir()
		r := proc.NewReaper()
		defer r.Close()
		err := DryRun(context.Background(), r, "/bin/false", dir, st)
		if err == nil {
			t.Fatal("DryRun with /bin/false succeeded")
		}
		assertNoCheckFile(t, dir)
	})
	t.Run("the write fails", func(t *testing.T) {
		// A child of this test binary writes under RLIMIT_FSIZE 0: the file is
		// created, the write fails with EFBIG (Go ignores SIGXFSZ).
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestDryRunWriteFailsChild$", "-test.v")
		cmd.Env = append(os.Environ(), "UPGRADE_TEST_RUN_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "file too large") {
			t.Errorf("child output lacks the write error (EFBIG):\n%s", out)
		}
		assertNoCheckFile(t, dir)
	})
}

// TestDryRunWriteFailsChild is the child of TestDryRunRemovesCheckFile (it
// does nothing unless UPGRADE_TEST_RUN_DIR is set).
func TestDryRunWriteFailsChild(t *testing.T) {
	dir := os.Getenv("UPGRADE_TEST_RUN_DIR")
	if dir == "" {
		t.Skip("the child of TestDryRunRemovesCheckFile")
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		t.Fatal(err)
	}
	r := proc.NewReaper()
	defer r.Close()
	err := DryRun(context.Background(), r, "/bin/false", dir, &State{Manager: &Handover{Version: HandoverVersion}})
	if err == nil {
		t.Fatal("DryRun succeeded under RLIMIT_FSIZE 0")
	}
	t.Logf("DryRun: %v", err)
	if !errors.Is(err, unix.EFBIG) {
		t.Errorf("DryRun error %v, want EFBIG from the write", err)
	}
}

func assertNoCheckFile(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(dir, CheckFile))
	switch {
	case err == nil:
		t.Errorf("%s (%d bytes) left in run_dir after a failed dry run", CheckFile, fi.Size())
	case !errors.Is(err, os.ErrNotExist):
		t.Errorf("stat %s: %v", CheckFile, err)
	}
}

// TestGenHandoverWithoutErrFD: a generation written without err_fd (one
// merged output pipe) decodes with ErrFD -1, and one without either
// descriptor with both -1, never as descriptor 0.
func TestGenHandoverWithoutErrFD(t *testing.T) {
	var merged, none GenHandover
	if err := json.Unmarshal([]byte(`{"id":1,"pid":10,"out_fd":7}`), &merged); err != nil {
		t.Fatal(err)
	}
	if merged.OutFD != 7 || merged.ErrFD != -1 || merged.PID != 10 {
		t.Errorf("decoded %+v, want OutFD 7, ErrFD -1, PID 10", merged)
	}
	if err := json.Unmarshal([]byte(`{"id":1,"pid":10}`), &none); err != nil {
		t.Fatal(err)
	}
	if none.OutFD != -1 || none.ErrFD != -1 || none.AccessFD != -1 || merged.AccessFD != -1 {
		t.Errorf("decoded %+v and %+v, want every descriptor not named -1", none, merged)
	}
}

// TestFit: a state keeps the BPF steering of its TCP listeners only for a
// binary that lists FeatureSteer, and the rename steering of its Unix
// listeners only for one that lists FeatureSteerUnix (in its version line,
// or as a state's Features); without them that steering and its
// descriptors are dropped, the held sockets stay.
func TestFit(t *testing.T) {
	steered := func() *State {
		return &State{Manager: &Handover{Version: HandoverVersion, Sockets: map[string][]SocketHandover{
			"web": {{Raw: "tcp://127.0.0.1:8001", FD: 3, Steer: &listen.SteerHandover{SocketsFD: 10, ServingFD: 11, ProgFD: 12,
				Sockets: []listen.GenSocketHandover{{FD: 13, Slot: 0, Gens: []int{1}}}}}},
			"api": {{Raw: "unix:///run/api.sock", FD: 4, Ino: 7, Hold: "/run/.api.sock.held", Rename: &listen.UnixSteerHandover{ServingGens: []int{1},
				Sockets: []listen.UnixSocketHandover{{FD: 14, Ino: 8, Hold: "/run/.api.sock.g2-0001", Gens: []int{2}}}}}},
		}}}
	}
	line := func(features ...string) []string {
		return strings.Fields("supervisor v2 " + strings.Join(features, " ") + " " + VersionSuffix())
	}
	for _, tc := range []struct {
		name     string
		features []string
		want     []int
	}{
		{"version line with both features", line(FeatureSteer, FeatureSteerUnix), []int{3, 4, 10, 11, 12, 13, 14}},
		{"this binary's features", Features(), []int{3, 4, 10, 11, 12, 13, 14}},
		{"version line with BPF steering only", line(FeatureSteer), []int{3, 4, 10, 11, 12, 13}},
		{"version line with rename steering only", line(FeatureSteerUnix), []int{3, 4, 14}},
		{"older version line", line(), []int{3, 4}},
		{"state without features", nil, []int{3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := steered()
			st.Fit(tc.features)
			got := st.FDs()
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("FDs after Fit(%q) = %v, want %v", tc.features, got, tc.want)
			}
		})
	}
	var fresh State
	fresh.Fit(nil) // no manager state: nothing to drop
}
