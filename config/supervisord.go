package config

import (
	"fmt"
	"strings"
)

// supervisordSections are section headers only a supervisord configuration
// (INI) has: none is a valid TOML table header of this file.
var supervisordSections = []string{
	"[program:", "[group:", "[eventlistener:", "[fcgi-program:", "[rpcinterface:",
	"[supervisord]", "[supervisorctl]", "[unix_http_server]", "[inet_http_server]",
}

// supervisordINI returns an error naming the first line of src that is a
// supervisord section header, pointing at `supervisor import`; nil when
// there is none.
func supervisordINI(path, src string) *Error {
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		for _, h := range supervisordSections {
			if strings.HasPrefix(line, h) && strings.HasSuffix(line, "]") {
				return &Error{File: path, Line: i + 1, Msg: fmt.Sprintf(
					"%s: this looks like a supervisord configuration: convert it with `supervisor import %s`", line, path)}
			}
		}
	}
	return nil
}
