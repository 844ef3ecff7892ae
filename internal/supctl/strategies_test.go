package supctl

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/reload/strategy"
)

// TestStrategiesListedAlike: supctl's usage and its usage errors, the three
// completion scripts, both manual pages, README's verb summary and the
// errors for an unknown strategy (the configuration's and the control
// API's) list exactly the strategies of reload/strategy's registry, in its
// order; the manual's RELOAD STRATEGIES section names each one's kinds.
func TestStrategiesListedAlike(t *testing.T) {
	want := strategy.Names()
	if len(want) == 0 {
		t.Fatal("the registry lists no strategy")
	}
	lists := map[string][]string{}
	lists["usage"] = words(t, usage, `S is a reload strategy: (\S+)`, `\|`)
	for _, verb := range []string{"reload", "deploy"} {
		err := Run([]string{"-s", filepath.Join(t.TempDir(), "none.sock"), verb}, nil, nil)
		lists[verb+" usage error"] = words(t, errText(err), `\[--strategy ([^\]]+)\]`, `\|`)
	}
	for _, shell := range shells {
		script, err := CompletionScript(shell)
		if err != nil {
			t.Fatal(err)
		}
		lists[shell+" completion"] = words(t, script, `(?m)(?:--strategy\) .*(?:compgen -W "|compadd )|-l strategy -x -a ')([a-z0-9 ]+)`, ` `)
	}
	supctl8 := readMan(t, "supctl.8.md")
	for i, m := range regexp.MustCompile(`\[\*\*--strategy ([^\]]+)\]`).FindAllStringSubmatch(supctl8, -1) {
		lists[fmt.Sprintf("supctl.8 --strategy #%d", i+1)] = strings.Split(strings.NewReplacer("**", "").Replace(m[1]), "|")
	}
	if len(lists) < 8 {
		t.Errorf("found the lists %v; supctl.8 should show the strategies for reload and deploy", keys(lists))
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range regexp.MustCompile(`supctl (?:reload|deploy) [^\n]*\[--strategy ([a-z0-9|]+)\]`).FindAllStringSubmatch(string(readme), -1) {
		lists[fmt.Sprintf("README --strategy #%d", i+1)] = strings.Split(m[1], "|")
	}
	lists["gunisup.toml.5 RELOAD STRATEGIES"] = manSection(t, readMan(t, "gunisup.toml.5.md"))
	_, perr := strategy.Parse("bogus")
	lists["control API error"] = words(t, errText(perr), `\(want ([^)]+)\)`, `, | or `)
	_, cerr := config.Parse("/etc/gunisup.toml", []byte("[app.x]\nkind = \"process\"\ncommand = [\"true\"]\nallow_root = true\n[app.x.reload]\nstrategy = \"bogus\"\n"))
	lists["configuration error"] = words(t, errText(cerr), `unknown strategy "bogus" \(want ([^)]+)\)`, `, | or `)
	for where, got := range lists {
		for i := range got {
			got[i] = strings.Trim(strings.TrimSpace(got[i]), `"`)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %q; the registry has %q", where, got, want)
		}
	}
}

// manSection returns the strategies gunisup.toml(5)'s RELOAD STRATEGIES
// section describes, checking that each entry's heading names its kinds.
func manSection(t *testing.T, man string) []string {
	t.Helper()
	_, sec, ok := strings.Cut(man, "\n# RELOAD STRATEGIES\n")
	if !ok {
		t.Fatal("gunisup.toml.5.md has no RELOAD STRATEGIES section")
	}
	sec, _, _ = strings.Cut(sec, "\n# ")
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\*\*([a-z0-9]+)\*\* \(([^)]*)\)$`).FindAllStringSubmatch(sec, -1) {
		names = append(names, m[1])
		in, _ := strategy.Strategy(m[1]).Info()
		if len(in.Kinds) == 1 && !strings.Contains(m[2], `"`+in.Kinds[0]+`"`) {
			t.Errorf("gunisup.toml.5: %s is described as (%s); the registry allows kind %q only", m[1], m[2], in.Kinds[0])
		}
	}
	return names
}

// words finds re's first group in text and splits it where sep matches.
func words(t *testing.T, text, re, sep string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		t.Errorf("no list of strategies (%s) in %q", re, text)
		return nil
	}
	return regexp.MustCompile(sep).Split(m[1], -1)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func readMan(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "man", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
