package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks", "# c\n\n   # indented\n\t\nA=1\n", map[string]string{"A": "1"}},
		{"export", "export A=1\nexport\tB=2\nexporter=3\n", map[string]string{"A": "1", "B": "2", "exporter": "3"}},
		{"unquoted", "A = spaced value  \nB=x#y\nC=x # comment\nD=\nE==\n", map[string]string{"A": "spaced value", "B": "x#y", "C": "x", "D": "", "E": "="}},
		{"single", "A='a \"b\" $c \\n'\nB='' # c\n", map[string]string{"A": `a "b" $c \n`, "B": ""}},
		{"double", `A="a \"b\" \\ \$c \n\t x"` + "\nB=\"#not comment\"\nC=\"\\q\"\n", map[string]string{"A": "a \"b\" \\ $c \n\t x", "B": "#not comment", "C": `\q`}},
		{"crlf", "A=1\r\nB='2'\r\n", map[string]string{"A": "1", "B": "2"}},
		{"later wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.env")
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ParseEnvFile(p)
			if err != nil {
				t.Fatalf("ParseEnvFile: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	text := "GOOD=1\n" +
		"no equals sign\n" +
		"1BAD=x\n" +
		"BAD-NAME=x\n" +
		"=x\n" +
		"A='unterminated\n" +
		"B=\"unterminated\n" +
		"C='x' trailing\n" +
		"D=\"x\"trailing\n" +
		"export =x\n" +
		"E=nul\x00here\n" +
		"F='quoted\x00nul'\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvFile(p)
	if env != nil {
		t.Errorf("got env %v together with an error", env)
	}
	checkGolden(t, dir, "envfile", nil, err)
}

func TestParseEnvFileMissing(t *testing.T) {
	_, err := ParseEnvFile(filepath.Join(t.TempDir(), "absent.env"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}
