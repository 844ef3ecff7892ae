package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gunisup/supervisor/importer"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// importINI runs `supervisor import FILE...`: the TOML on stdout, one
// warning per line on stderr. It returns nil (exit 0) with or without
// warnings, and exit status 2 with no output for no file, an unreadable
// file, one that is not a supervisord configuration, or an option.
func importINI(files []string, stdout, stderr io.Writer) error {
	if len(files) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.New(ExitConfig, errors.New("import: name at least one supervisord file"))
	}
	for _, f := range files {
		if strings.HasPrefix(f, "-") {
			fmt.Fprint(stderr, usage)
			return exitcode.New(ExitConfig, fmt.Errorf("import: unknown option %q (import takes file names only)", f))
		}
	}
	host, err := os.Hostname()
	if err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("import: hostname for %%(host_node_name)s: %w", err))
	}
	res, err := importer.Convert(files, importer.Options{LookupEnv: os.LookupEnv, Hostname: host})
	if err != nil {
		return exitcode.New(ExitConfig, err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if _, err := stdout.Write(res.TOML); err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("import: writing the TOML: %w", err))
	}
	return nil
}
