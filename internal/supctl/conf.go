package supctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/BurntSushi/toml"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// socketPath is the control socket: -s, else the control_socket of the
// configuration file -c names (relative to the file's directory, as the
// supervisor reads it; the default when the file sets none), else
// $SUPCTL_SOCKET, else the default.
func socketPath(sock, conf string) (string, error) {
	if sock != "" && conf != "" {
		return "", errors.New("-s and -c both name the control socket; give one")
	}
	if sock != "" {
		return sock, nil
	}
	if conf != "" {
		return configSocket(conf)
	}
	if env := os.Getenv("SUPCTL_SOCKET"); env != "" {
		return env, nil
	}
	return control.DefaultSocket, nil
}

// configSocket reads [supervisor] control_socket from the TOML file path,
// and nothing else of it.
func configSocket(path string) (string, error) {
	var f struct {
		Supervisor struct {
			ControlSocket string `toml:"control_socket"`
		} `toml:"supervisor"`
	}
	if _, err := toml.DecodeFile(path, &f); err != nil {
		return "", fmt.Errorf("-c %s: %w", path, err)
	}
	s := f.Supervisor.ControlSocket
	switch {
	case s == "":
		return control.DefaultSocket, nil
	case filepath.IsAbs(s):
		return filepath.Clean(s), nil
	}
	return filepath.Join(filepath.Dir(path), s), nil
}

// supervisorLog prints the supervisor's own recent log lines (-n, default
// 100), and with -f every later one until interrupted.
func supervisorLog(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, pos, err := splitFlags(args, map[string]bool{"n": true, "f": false, "follow": false})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return exitcode.New(ExitUsage, errors.New("usage: supctl log [-n LINES] [-f] (for an app's output: supctl logs APP)"))
	}
	n := 100
	if s, ok := flags["n"]; ok {
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			return exitcode.New(ExitUsage, fmt.Errorf("-n wants a number of lines >= 0, got %q", s))
		}
	}
	_, f := flags["f"]
	_, follow := flags["follow"]
	return c.SupervisorLog(ctx, n, f || follow, func(l control.LogLine) { fmt.Fprintln(out, l.Text) })
}
