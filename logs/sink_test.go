package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// numbered returns lines "seq NNNNNNN ab" for from <= N < to.
func numbered(from, to int) []byte {
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "seq %07d ab\n", i)
	}
	return b.Bytes()
}

// logFiles returns the rotated files of dir/name.log oldest first (their
// names carry the rotation time), then the current file.
func logFiles(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rotated []string
	for _, e := range ents {
		if e.Name() != "app.log" {
			rotated = append(rotated, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(rotated)
	return append(rotated, filepath.Join(dir, "app.log"))
}

// checkSequence reads the files in order and checks that they hold every
// number in [0, n) exactly once, in order.
func checkSequence(t *testing.T, files []string, n int) {
	t.Helper()
	next := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = fh
		if strings.HasSuffix(f, ".gz") {
			if r, err = gzip.NewReader(fh); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			_, rest, ok := strings.Cut(sc.Text(), " stdout: seq ")
			if !ok {
				t.Fatalf("%s: unexpected line %q", f, sc.Text())
			}
			v, err := strconv.Atoi(strings.TrimSuffix(rest, " ab"))
			if err != nil || v != next {
				t.Fatalf("%s: line %q, want number %d", f, sc.Text(), next)
			}
			next++
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		_ = fh.Close() // read only
	}
	if next != n {
		t.Fatalf("files hold numbers 0..%d, want 0..%d", next-1, n-1)
	}
}

// runNumbered captures lines 0..n-1 into a file sink and closes everything.
func runNumbered(t *testing.T, fs *FileSink, n int) *App {
	a := NewApp("app", Options{Sink: fs, Timestamps: true, QueueBytes: 64 << 20})
	r, w := pipe(t)
	c := a.Attach(1, r, nil, nil)
	waitDone(t, "writer", writeAsync(t, w, numbered(0, n)))
	finish(t, a, c, w)
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Dropped() != 0 {
		t.Fatalf("%d lines dropped (the queue holds them all)", a.Dropped())
	}
	return a
}

// Rotating at 1 MiB with 5 files kept, 100,000 numbered lines (5.4 MB) are
// all in the files, each exactly once.
func TestFileRotationKeepsEveryLineOnce(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileSink(FileOptions{Path: filepath.Join(dir, "app.log"), MaxSizeMB: 1, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	runNumbered(t, fs, 100000)
	files := logFiles(t, dir)
	if len(files) != 6 {
		t.Fatalf("%d files, want 5 rotated and the current one: %v", len(files), files)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20 {
			t.Fatalf("%s has %d bytes, over 1 MiB", f, st.Size())
		}
	}
	checkSequence(t, files, 100000)
}

// With compression, the rotated files become .gz files holding the same lines.
func TestFileRotationCompressed(t *testing.T) {
	dir := t.TempDir()
	fs, err := NewFileSink(FileOptions{Path: filepath.Join(dir, "app.log"), MaxSizeMB: 1, MaxFiles: 5, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	runNumbered(t, fs, 60000)
	waitFor(t, "rotated files compressed", func() bool {
		files := logFiles(t, dir)
		for _, f := range files[:len(files)-1] {
			if !strings.HasSuffix(f, ".gz") {
				return false
			}
		}
		return len(files) == 4
	})
	checkSequence(t, logFiles(t, dir), 60000)
}

// Reopen after an external rename continues in a new file at the path.
func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	fs, err := NewFileSink(FileOptions{Path: path, MaxSizeMB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Reopen(); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{path + ".1": "before\n", path: "after\n"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Fatalf("%s holds %q, want %q", f, b, want)
		}
	}
}

func TestNewFileSinkRejectsUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileSink(FileOptions{Path: filepath.Join(dir, "file", "app.log")}); err == nil {
		t.Fatal("a path under a regular file was accepted")
	}
}
