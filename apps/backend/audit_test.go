package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditScriptExitCodes runs scripts/audit.sh with stand-in govulncheck
// executables (the real database is unreachable here), one per outcome, and
// checks the exit codes and first words that docs/CONTRACTS.md fixes.
func TestAuditScriptExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
		code               int
	}{
		{"clean", "echo 'No vulnerabilities found.'; exit 0", "OK: ", 0},
		{"findings", "echo 'Vulnerability #1: GO-2099-0001'; exit 3", "FAIL: ", 1},
		{"database unreachable", `echo 'govulncheck: fetching vulnerabilities: Get "https://vuln.go.dev/index/modules.json.gz": dial tcp: lookup vuln.go.dev: no such host' >&2; exit 1`,
			"UNVERIFIED: vulnerability database unreachable (govulncheck: fetching vulnerabilities:", 3},
		{"other error", "echo 'govulncheck: loading packages: no Go files' >&2; exit 1", "ERROR: ", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := filepath.Join(t.TempDir(), "govulncheck")
			if err := os.WriteFile(fake, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "scripts/audit.sh")
			cmd.Env = append(os.Environ(), "GOVULNCHECK="+fake)
			out, err := cmd.CombinedOutput()
			code := 0
			if exit, ok := err.(*exec.ExitError); ok {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if code != tc.code || !strings.HasPrefix(lines[len(lines)-1], tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d and a last line starting %q", code, out, tc.code, tc.want)
			}
		})
	}
}
