package supctl

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/reload/strategy"
)

// completions holds one script per shell; completionWords fills in its
// @PLACEHOLDERS@, so the lists of commands and values live here only.
//
//go:embed completions/supctl.bash completions/supctl.zsh completions/supctl.fish
var completions embed.FS

// Words the completion scripts offer.
var (
	// verbs are supctl's commands, in usage order.
	verbs = []string{"status", "start", "stop", "restart", "signal", "pid", "reload", "deploy", "rollback", "logs", "log", "top", "errors", "upgrade", "reread", "update", "version", "completion", "help"}
	// appVerbs take an app name as their first argument.
	appVerbs = []string{"status", "start", "stop", "restart", "signal", "pid", "reload", "deploy", "rollback", "logs", "errors", "update"}
	// strategies are the reload strategies of the registry.
	strategies  = strategy.Names()
	shells      = []string{"bash", "zsh", "fish"}
	globalFlags = []string{"-s", "-c", "-timeout", "--version", "--help"}
)

// completionWords replaces the scripts' placeholders.
var completionWords = strings.NewReplacer(
	"@VERBS@", strings.Join(verbs, " "),
	"@APPVERBS@", strings.Join(appVerbs, " | "),
	"@APPVERBS_SPACED@", strings.Join(appVerbs, " "),
	"@STRATEGIES@", strings.Join(strategies, " "),
	"@SHELLS@", strings.Join(shells, " "),
	"@GLOBALFLAGS@", strings.Join(globalFlags, " "),
)

// completion runs `supctl completion SHELL`, which prints that shell's
// script, or `supctl completion apps`, which the scripts call: it prints the
// app names of the supervisor answering through c, one per line, and nothing
// (with success) when none answers within versionTimeout.
func completion(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	if len(args) != 1 {
		return exitcode.New(ExitUsage, errors.New("usage: supctl completion bash|zsh|fish"))
	}
	if args[0] == "apps" {
		ctx, cancel := context.WithTimeout(ctx, versionTimeout)
		defer cancel()
		st, err := c.Status(ctx, "")
		if err != nil {
			// No supervisor answers: no app names to offer, which is not a
			// failure of the shell's completion.
			return nil
		}
		for _, a := range st.Apps {
			fmt.Fprintln(out, a.Name)
		}
		return nil
	}
	script, err := CompletionScript(args[0])
	if err != nil {
		return exitcode.New(ExitUsage, err)
	}
	_, err = io.WriteString(out, script)
	return err
}

// CompletionScript returns the completion script of shell (bash, zsh or
// fish), or an error naming the shells there are.
func CompletionScript(shell string) (string, error) {
	raw, err := completions.ReadFile("completions/supctl." + shell)
	if err != nil {
		return "", fmt.Errorf("no completion for shell %q (there are: %s)", shell, strings.Join(shells, ", "))
	}
	return completionWords.Replace(string(raw)), nil
}
