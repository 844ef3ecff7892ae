package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// InstanceToken is replaced by an instance's number (0..N-1) in the
// command, env values, health command and log_file of an app with
// instances = N.
const InstanceToken = "{instance}"

// instances reads `instances`: allowed for process apps only.
func instances(t *table, a *App) {
	if !t.integer("instances", &a.Instances, 1, MaxInstances) {
		return
	}
	if a.Kind != KindProcess && a.Instances > 1 {
		t.errf("instances", "only valid for kind \"process\" (a Gunicorn app scales with workers)")
	}
}

// instanceLogFile rejects a log_file shared by several instances: each
// instance rotates its own file, and two rotating one file lose lines.
func instanceLogFile(t *table, a *App) {
	if a.Instances > 1 && a.Log.Target == LogFile && !strings.Contains(a.Log.File, InstanceToken) {
		t.errf("log_file", "must contain %s with instances = %d (each instance writes its own file)", InstanceToken, a.Instances)
	}
}

// expandInstances replaces every app with instances = N > 1 by N apps named
// NAME:0..NAME:N-1, each with InstanceToken substituted, and rewrites the
// after and requires lists that name such an app to name its instances.
func expandInstances(apps []*App) []*App {
	byBase := map[string][]string{}
	var out []*App
	for _, a := range apps {
		if a.Instances <= 1 {
			out = append(out, a)
			continue
		}
		for i := range a.Instances {
			inst := a.instance(i)
			byBase[a.Name] = append(byBase[a.Name], inst.Name)
			out = append(out, inst)
		}
	}
	for _, a := range out {
		a.After = expandNames(a.After, byBase)
		a.Requires = expandNames(a.Requires, byBase)
	}
	return out
}

// instance is instance i of a.
func (a *App) instance(i int) *App {
	n := strconv.Itoa(i)
	sub := func(s string) string { return strings.ReplaceAll(s, InstanceToken, n) }
	c := *a
	c.Name = fmt.Sprintf("%s:%d", a.Name, i)
	c.InstanceOf, c.Instance = a.Name, i
	c.Command = mapStrings(a.Command, sub)
	c.Health.Command = mapStrings(a.Health.Command, sub)
	c.Log.File = sub(a.Log.File)
	if a.Env != nil {
		c.Env = make(map[string]string, len(a.Env))
		for k, v := range a.Env {
			c.Env[k] = sub(v)
		}
	}
	c.After, c.Requires = slices.Clone(a.After), slices.Clone(a.Requires)
	c.Listen = slices.Clone(a.Listen)
	c.Args = slices.Clone(a.Args)
	return &c
}

func mapStrings(in []string, f func(string) string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

// expandNames replaces each name of an app with instances by its instances.
func expandNames(names []string, byBase map[string][]string) []string {
	if names == nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if inst, ok := byBase[n]; ok {
			out = append(out, inst...)
		} else {
			out = append(out, n)
		}
	}
	return out
}

// expandGroups rewrites the groups' app lists like the apps' after lists.
func expandGroups(groups []Group, apps []*App) {
	byBase := map[string][]string{}
	for _, a := range apps {
		if a.InstanceOf != "" {
			byBase[a.InstanceOf] = append(byBase[a.InstanceOf], a.Name)
		}
	}
	if len(byBase) == 0 {
		return
	}
	for i := range groups {
		groups[i].Apps = expandNames(groups[i].Apps, byBase)
	}
}

// MaxInstances is the most instances one app may run.
const MaxInstances = 1024
