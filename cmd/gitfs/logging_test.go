package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		wantErr       string
		check         func(t *testing.T, out string)
	}{
		{format: "text", level: "info", check: func(t *testing.T, out string) {
			if !strings.Contains(out, `msg=hello`) || !strings.Contains(out, "k=v") {
				t.Errorf("text log: %q", out)
			}
		}},
		{format: "json", level: "info", check: func(t *testing.T, out string) {
			var m map[string]any
			if err := json.Unmarshal([]byte(out), &m); err != nil || m["msg"] != "hello" || m["k"] != "v" {
				t.Errorf("json log %q: %v", out, err)
			}
		}},
		{format: "json", level: "error", check: func(t *testing.T, out string) {
			if out != "" {
				t.Errorf("info logged at level error: %q", out)
			}
		}},
		{format: "yaml", level: "info", wantErr: `--log-format "yaml"`},
		{format: "text", level: "loud", wantErr: `--log-level "loud"`},
	} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, &globalFlags{logFormat: tc.format, logLevel: tc.level})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s/%s: err %v, want %q", tc.format, tc.level, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.format, tc.level, err)
		}
		log.Info("hello", "k", "v")
		tc.check(t, buf.String())
	}
}

func TestVersionFlag(t *testing.T) {
	r := gitfs(t, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "gitfs ") || r.stderr != "" {
		t.Fatalf("--version: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	requireOneLine(t, "--version", r.stdout)
	if r := gitfs(t, "--log-format", "xml", "repo", "list"); r.code != 2 || !strings.Contains(r.stderr, "use text or json") {
		t.Errorf("bad --log-format: exit %d, %q", r.code, r.stderr)
	}
}
