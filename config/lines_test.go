package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// keyLineMap runs keyLines and returns its index as a map from
// toml.Key.String() to line, the form tests compare against.
func keyLineMap(src string) (map[string]int, error) {
	x, err := keyLines("test.toml", src)
	if err != nil {
		return nil, err
	}
	m := make(map[string]int, len(x.nodes))
	for id := 1; id < len(x.nodes); id++ {
		m[toml.Key(x.path(id)).String()] = x.nodes[id].line
	}
	return m, nil
}

// nestedInline returns "a = {a = {... = 1}}" with depth key components.
func nestedInline(depth int) string {
	return strings.Repeat("a = {", depth-1) + "a = 1" + strings.Repeat("}", depth-1) + "\n"
}

// dotted returns n copies of part joined by dots.
func dotted(part string, n int) string {
	return strings.TrimSuffix(strings.Repeat(part+".", n), ".")
}

func TestKeyLinesNesting(t *testing.T) {
	key33 := dotted("a", maxNesting+1)
	tests := []struct {
		name    string
		src     string
		wantErr string // "" when accepted
	}{
		{"inline tables at the limit", nestedInline(maxNesting), ""},
		{"inline tables one too deep", nestedInline(maxNesting + 1),
			"test.toml:1: " + key33 + ": nested more than 32 levels deep"},
		{"3000 inline tables", "x = 1\n\n" + nestedInline(3000),
			"test.toml:3: " + key33 + ": nested more than 32 levels deep"},
		{"under a table header", "[app.web]\nenv = " + strings.TrimPrefix(nestedInline(3000), "a = "),
			"test.toml:2: app.web.env." + dotted("a", maxNesting-2) + ": nested more than"},
		{"inline tables over several lines", "[app.web]\nenv = {\n a = {\n" + strings.Repeat(" a = {\n", 40),
			"test.toml:32: app.web.env." + dotted("a", maxNesting-2) + ": nested more than"},
		{"dotted key at the limit", dotted("a", maxNesting) + " = 1\n", ""},
		{"dotted key one too deep", "\n" + key33 + " = 1\n", "test.toml:2: " + key33 + ": nested more than"},
		{"table header too deep", "[" + dotted("t", 3000) + "]\n", "test.toml:1: " + dotted("t", maxNesting+1) + ": nested more than"},
		{"arrays at the limit", "x = " + strings.Repeat("[", maxNesting-1) + strings.Repeat("]", maxNesting-1) + "\n", ""},
		{"arrays too deep", "x = " + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + "\n", "test.toml:1: x: nested more than"},
		{"arrays of inline tables", "x = " + strings.Repeat("[{a = ", 20) + "1" + strings.Repeat("}]", 20) + "\n",
			"test.toml:1: x." + dotted("a", 16) + ": nested more than"},
		{"quoted keys", `"q.1" = ` + strings.Repeat(`{"q.1" = `, 40) + "1" + strings.Repeat("}", 40) + "\n",
			`test.toml:1: ` + dotted(`"q.1"`, maxNesting+1) + ": nested more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keyLines("test.toml", tc.src)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr == "":
				return
			case err == nil:
				t.Fatalf("accepted, want an error starting %q", tc.wantErr)
			case !errors.Is(err, errTooDeep):
				t.Errorf("error %v does not wrap errTooDeep", err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("error\n  %v\nwant it to start with\n  %s", err, tc.wantErr)
			}
		})
	}
}

// TestParseRefusesDeepNestingFast is issue 13's case: a 3,000-deep inline
// table (a 12 KB file) took 85 s and 1 GB in check. Parse must refuse it
// with file:line and the key, in well under a second even under -race.
func TestParseRefusesDeepNestingFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep.toml")
	src := "[app.web]\nwsgi = \"app:app\"\nenv = " + strings.TrimPrefix(nestedInline(3000), "a = ")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Load(path)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Load accepted a 3000-deep inline table")
	}
	want := path + ":3: app.web.env." + dotted("a", maxNesting-2) + ": nested more than 32 levels deep"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error\n  %v\nwant it to start with\n  %s", err, want)
	}
	if took > time.Second {
		t.Errorf("Load took %v to refuse %d bytes, want well under 1 s", took, len(src))
	}
	t.Logf("refused %d bytes in %v", len(src), took)
}

// benchDoc returns a configuration with the given number of app tables,
// each with a quoted key in its header, an inline env table holding a
// multi-line string and nested arrays, dotted keys, a comment and an
// 8-deep inline table, so every scanner path runs.
func benchDoc(apps int) string {
	var b strings.Builder
	b.WriteString("[supervisor]\nhttp = \"127.0.0.1:9321\"\n\n")
	for i := range apps {
		fmt.Fprintf(&b, "[app.\"web-%d.example\"]\nwsgi = \"app:app\"\nworkers = 2\n", i)
		b.WriteString("listen = [\"tcp://127.0.0.1:8000\", \"unix:///run/web.sock\"]\n")
		b.WriteString("env = { A = \"1\", B = { C = \"\"\"multi\nline\"\"\" }, D = [[1, 2], [3]] }\n")
		b.WriteString("health.path = \"/healthz\" # a comment\nhealth.interval = \"5s\"\n")
		b.WriteString("deep = " + strings.TrimPrefix(nestedInline(8), "a = ") + "\n")
	}
	return b.String()
}

// BenchmarkParseScaling runs the two parsing steps of Parse, keyLines and
// toml.Decode, each on documents of 1x, 10x and 100x the size (10, 100 and
// 1,000 apps), and reports the time per byte (ns/B): flat when linear.
// B/op and allocs/op grow tenfold per step for both.
func BenchmarkParseScaling(b *testing.B) {
	steps := []struct {
		name string
		run  func(src string) error
	}{
		{"keyLines", func(src string) error {
			if _, err := keyLines("bench.toml", src); err != nil {
				return err
			}
			return nil
		}},
		{"toml.Decode", func(src string) error {
			var doc map[string]any
			_, err := toml.Decode(src, &doc)
			return err
		}},
	}
	for _, step := range steps {
		for _, scale := range []int{1, 10, 100} {
			src := benchDoc(10 * scale)
			b.Run(fmt.Sprintf("%s/%dx_%dB", step.name, scale, len(src)), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := step.run(src); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(src)), "ns/B")
			})
		}
	}
}

// BenchmarkKeyLinesDeep times the refusal of ever deeper inline tables
// (3,000 levels is issue 13's 12 KB file): the scan stops at level 33, so
// the time does not grow with the depth.
func BenchmarkKeyLinesDeep(b *testing.B) {
	for _, depth := range []int{300, 3000, 30000} {
		src := nestedInline(depth)
		b.Run(fmt.Sprintf("depth_%d_%dB", depth, len(src)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := keyLines("bench.toml", src); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
