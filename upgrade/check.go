package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/textutil"
	"github.com/gunisup/supervisor/proc"
)

// CheckBinary runs `exe version` and returns the line it printed if the
// binary starts and speaks this hand-over format (the line ends with
// VersionSuffix); otherwise an error saying which of the two failed.
func CheckBinary(ctx context.Context, r *proc.Reaper, exe string) (string, error) {
	out, info, err := r.Output(ctx, []string{exe, "version"}, os.Environ(), "/")
	if err != nil || info.Code != 0 {
		return "", fmt.Errorf("new binary %s does not start (%v, %s): %s", exe, err, info, textutil.FirstLine(out))
	}
	line := strings.TrimSpace(string(out))
	if !strings.HasSuffix(line, VersionSuffix()) {
		return "", fmt.Errorf("new binary %s reports %q: it cannot take over this supervisor's state %s", exe, line, VersionSuffix())
	}
	return line, nil
}

// DryRun runs `exe upgrade-check` on st (written to a file in runDir and
// removed afterwards, whatever happens: a write that fails half-way, a
// check that fails). It returns nil only if the new binary exits 0 and
// echoes the state's digest, which proves it decoded that state and accepted
// it with the configuration at st.Config.
func DryRun(ctx context.Context, r *proc.Reaper, exe, runDir string, st *State) (err error) {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode hand-over state: %w", err)
	}
	path := filepath.Join(runDir, CheckFile)
	defer func() {
		if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("upgrade dry run: %w", rmErr))
		}
	}()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	out, info, err := r.Output(ctx, []string{exe, "upgrade-check", "-c", st.Config, "-state", path}, os.Environ(), "/")
	if err != nil || info.Code != 0 {
		return fmt.Errorf("`%s upgrade-check` failed (%v, %s): %s", exe, err, info, strings.TrimSpace(string(out)))
	}
	if want := digest(b); !strings.Contains(string(out), want) {
		return fmt.Errorf("`%s upgrade-check` did not confirm the state (digest %s): %q", exe, want, textutil.FirstLine(out))
	}
	return nil
}

// CheckFile is the name, in run_dir, of the state file DryRun writes for
// the new binary; it exists only while a dry run runs.
const CheckFile = "upgrade-check.json"

// digest names a hand-over state in upgrade-check's answer.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "state " + hex.EncodeToString(sum[:8])
}

// ErrConfig marks a Check failure caused by the configuration itself.
var ErrConfig = errors.New("configuration")

// Check is the new binary's side of DryRun: it decodes the state file a
// running supervisor wrote and checks, touching no descriptor or process,
// that this binary can take it over with the configuration at cfgPath. On
// success it returns the line to print, which names the state's digest;
// errors wrap ErrConfig when the configuration does not load.
func Check(cfgPath, statePath, versionLine string) (string, error) {
	if statePath == "" {
		return "", fmt.Errorf("%w: upgrade-check needs -state FILE", ErrConfig)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	b, err := os.ReadFile(statePath)
	if err != nil {
		return "", fmt.Errorf("hand-over state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("decode hand-over state %s: %w", statePath, err)
	}
	if st.Manager == nil {
		return "", fmt.Errorf("hand-over state %s has no manager state", statePath)
	}
	if err := st.Manager.Validate(cfg); err != nil {
		return "", fmt.Errorf("cannot take over with %s: %w", cfg.Path, err)
	}
	return fmt.Sprintf("%s can take over %d apps from %s (%s)", versionLine, len(st.Manager.Apps), st.FromVersion, digest(b)), nil
}
