package contrib_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// k8sDoc is the part of a Kubernetes object the test reads.
type k8sDoc struct {
	Kind     string                `yaml:"kind"`
	Metadata struct{ Name string } `yaml:"metadata"`
	Data     map[string]string     `yaml:"data"`
	Spec     struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string `yaml:"name"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Exec struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// TestKubernetesDeployment parses contrib/kubernetes/deployment.yaml and
// checks it against the code: the ConfigMap's configuration is valid; the
// liveness probe gets /healthz and the readiness probe /readyz on the port
// of its [supervisor] http; terminationGracePeriodSeconds exceeds the
// preStop pause plus shutdown_timeout.
func TestKubernetesDeployment(t *testing.T) {
	path := filepath.Join("kubernetes", "deployment.yaml")
	docs := decodeYAMLDocs[k8sDoc](t, path)
	configs := map[string]string{}
	var deploy *k8sDoc
	for i := range docs {
		switch docs[i].Kind {
		case "ConfigMap":
			configs[docs[i].Metadata.Name] = docs[i].Data["gunisup.toml"]
		case "Deployment":
			deploy = &docs[i]
		}
	}
	if deploy == nil {
		t.Fatalf("%s: no Deployment", path)
	}
	pod := deploy.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.Volumes) != 1 {
		t.Fatalf("%s: %d containers and %d volumes, want one of each", path, len(pod.Containers), len(pod.Volumes))
	}
	text, ok := configs[pod.Volumes[0].ConfigMap.Name]
	if !ok || text == "" {
		t.Fatalf("%s: the volume's ConfigMap %q holds no gunisup.toml", path, pod.Volumes[0].ConfigMap.Name)
	}
	name := path + " ConfigMap gunisup.toml"
	cfg := parseContainerConfig(t, name, text)
	port := httpPort(t, name, cfg, false)
	c := pod.Containers[0]
	checkConfigMount(t, path, c, pod.Volumes[0].Name)
	for _, p := range []struct {
		what, path string
		probe      *probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		if p.probe == nil {
			t.Errorf("%s: container %s has no %s", path, c.Name, p.what)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: %s gets %q, want %s", path, p.what, p.probe.HTTPGet.Path, p.path)
		}
		checkServed(t, path+" "+p.what, p.probe.HTTPGet.Path)
		if got := probePort(c, p.probe.HTTPGet.Port); got != port {
			t.Errorf("%s: %s port %v is %d, want %d ([supervisor] http)", path, p.what, p.probe.HTTPGet.Port, got, port)
		}
	}
	pause := preStopPause(t, path, c)
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if need := pause + shutdownTimeout(t, name, cfg); grace <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want more than the preStop pause and shutdown_timeout (%v)", path, grace, need)
	}
	t.Logf("probes on port %d; grace %v, preStop pause %v, shutdown_timeout %v", port, grace, pause, cfg.Supervisor.ShutdownTimeout)
}

// checkConfigMount fails the test unless c mounts the volume named volume
// where the image's ENTRYPOINT (contrib/docker/Dockerfile) reads its
// configuration.
func checkConfigMount(t *testing.T, path string, c container, volume string) {
	t.Helper()
	dockerfile := filepath.Join(dockerDir, "Dockerfile")
	ins, _ := parseDockerfile(t, dockerfile)
	var conf string
	for _, in := range ins {
		if in.Keyword == "ENTRYPOINT" {
			argv := execForm(t, dockerfile, in, in.Args)
			if i := slices.Index(argv, "-c"); i >= 0 && i+1 < len(argv) {
				conf = argv[i+1]
			}
		}
	}
	for _, m := range c.VolumeMounts {
		if m.Name == volume && filepath.Join(m.MountPath, "gunisup.toml") == conf {
			return
		}
	}
	t.Errorf("%s: container %s mounts volume %s at %+v, want the directory of %s (the image's -c)", path, c.Name, volume, c.VolumeMounts, conf)
}

// probePort resolves a probe's port (a number or a container port's name)
// to a number; 0 when it names no port of c.
func probePort(c container, port any) int {
	switch p := port.(type) {
	case int:
		return p
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
	}
	return 0
}

// preStopPause is how long c's preStop hook sleeps (["sleep", "N"]); zero
// without one.
func preStopPause(t *testing.T, path string, c container) time.Duration {
	t.Helper()
	cmd := c.Lifecycle.PreStop.Exec.Command
	if len(cmd) == 0 {
		return 0
	}
	if len(cmd) != 2 || cmd[0] != "sleep" {
		t.Fatalf("%s: preStop %v: want [sleep N]", path, cmd)
	}
	d, err := time.ParseDuration(cmd[1] + "s")
	if err != nil {
		t.Fatalf("%s: preStop %v: %v", path, cmd, fmt.Errorf("sleep argument: %w", err))
	}
	return d
}
