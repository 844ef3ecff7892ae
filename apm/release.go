package apm

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// maxRelease bounds a release label read from a file.
const maxRelease = 64

// Release names the release in directory dir: the commit its git
// checkout's HEAD names (12 hex digits; read from .git without running
// git), else the first line of its REVISION file, else dir's base name.
// "" for dir "".
func Release(dir string) string {
	if dir == "" {
		return ""
	}
	if sha := gitHead(filepath.Join(dir, ".git")); sha != "" {
		return sha
	}
	if rev := firstLine(filepath.Join(dir, "REVISION")); rev != "" {
		return rev
	}
	return filepath.Base(dir)
}

// gitHead returns the commit HEAD names in git directory gitDir (or the
// one a ".git" file points at), shortened to 12 digits; "" when it cannot
// be read.
func gitHead(gitDir string) string {
	if fi, err := os.Stat(gitDir); err != nil {
		return ""
	} else if !fi.IsDir() {
		target, ok := strings.CutPrefix(firstLine(gitDir), "gitdir: ")
		if !ok {
			return ""
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(gitDir), target)
		}
		gitDir = target
	}
	head := firstLine(filepath.Join(gitDir, "HEAD"))
	if ref, ok := strings.CutPrefix(head, "ref: "); ok {
		head = firstLine(filepath.Join(gitDir, filepath.FromSlash(ref)))
		if head == "" {
			head = packedRef(filepath.Join(gitDir, "packed-refs"), ref)
		}
	}
	if !isHex(head) || len(head) < 12 {
		return ""
	}
	return head[:12]
}

// packedRef returns ref's commit in a packed-refs file, "" when absent.
func packedRef(path, ref string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sha, name, ok := strings.Cut(sc.Text(), " "); ok && name == ref {
			return sha
		}
	}
	return ""
}

// firstLine returns the first line of file path, trimmed and cut to
// maxRelease bytes; "" when it cannot be read.
func firstLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only
	buf := make([]byte, 256)
	n, _ := f.Read(buf) // a short or failed read gives what it gives
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	line = strings.TrimSpace(line)
	if len(line) > maxRelease {
		line = line[:maxRelease]
	}
	return line
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
