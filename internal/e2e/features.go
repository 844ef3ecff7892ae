package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RunDoctor runs `bin doctor -c cfg` under wrap (nil: directly), outside
// systemd (NOTIFY_SOCKET empty), and returns its standard output (the
// report) and exit status.
func RunDoctor(t testing.TB, wrap []string, bin, cfg string) (string, int) {
	t.Helper()
	argv := append(append([]string{}, wrap...), bin, "doctor", "-c", cfg)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return string(out), 0
}

// FeatureVerdicts reads a doctor report into supervisor_feature_enabled's
// values: feature name (without a "(user)" suffix) to 1 when every line of
// it says "works", else 0.
func FeatureVerdicts(report string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(report))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		feature, _, _ := strings.Cut(name, "(")
		v := 0.0
		if strings.HasPrefix(rest, "works") {
			v = 1
		}
		if old, ok := out[feature]; !ok || v < old {
			out[feature] = v
		}
	}
	return out
}

// FeatureSeries scrapes http://addr/metrics for the
// supervisor_feature_enabled series, feature to value.
func FeatureSeries(addr string) (map[string]float64, error) {
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		var f string
		var v float64
		if _, err := fmt.Sscanf(line, "supervisor_feature_enabled{feature=%q} %g", &f, &v); err == nil {
			out[f] = v
		}
	}
	return out, nil
}
