package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// LoadApart is Load for a supervisor taking over a dead predecessor's
// apps, where one app's problem must not stop the others. When the file
// is valid it returns the configuration and nil. When every problem lies
// inside the [app.NAME] table of an app that was read (not in listen or
// a log key: a supervisor uses them before it starts anything, to take or
// bind the app's sockets and open its log), it returns the configuration with those apps in Broken and
// the *Errors listing every problem; otherwise nil and the *Errors, as
// Load does.
func LoadApart(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = "cannot read: " + pe.Err.Error()
		}
		return nil, &Errors{List: []*Error{{File: path, Msg: msg, Err: err}}}
	}
	cfg, errs := parse(path, data)
	all := errs.err()
	if all == nil {
		return cfg, nil
	}
	if cfg == nil {
		return nil, all
	}
	broken := map[string]*Errors{}
	for _, e := range errs.List {
		name := cfg.appOfKey(e.Key)
		if name == "" {
			return nil, all
		}
		if broken[name] == nil {
			broken[name] = &Errors{files: errs.files}
		}
		broken[name].add(e)
	}
	cfg.Broken = map[string]error{}
	for name, be := range broken {
		for _, a := range cfg.Apps {
			if a.Name == name || a.InstanceOf == name {
				cfg.Broken[a.Name] = be.err()
			}
		}
	}
	return cfg, all
}

// appOfKey names the app (its table's name: an instance's base name)
// whose own table is key, or holds it, other than listen and the log
// keys; "" for any other key.
func (c *Config) appOfKey(key string) string {
	best, sub := "", ""
	for _, a := range c.Apps {
		name := a.Name
		if a.InstanceOf != "" {
			name = a.InstanceOf
		}
		table := keyString([]string{"app", name})
		rest, ok := strings.CutPrefix(key, table+".")
		if (key == table || ok && rest != "") && len(name) > len(best) {
			best, sub = name, rest
		}
	}
	first, _, _ := strings.Cut(sub, ".")
	first, _, _ = strings.Cut(first, "[")
	if first == "listen" || strings.HasPrefix(first, "log") {
		return ""
	}
	return best
}
