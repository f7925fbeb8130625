package settings

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// systemDirs are folders a root must not hold: srs-offload deletes files under its roots.
var systemDirs = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/sbin", "/sys", "/usr", "/var/lib", "/var/log"}

// Warnings lists what is allowed but probably a mistake, by key: a hook listener off loopback
// without hooks.token, a root that is / or holds system folders, nested roots, path-style
// requests to AWS S3, and (when file
// is not empty) a config file readable by others that holds a secret. It reads the file and the
// roots' symlinks; call it on a config that passed Validate.
func Warnings(c Config, file string) []Problem {
	var w []Problem
	add := func(key, format string, a ...any) { w = append(w, Problem{key, fmt.Sprintf(format, a...)}) }

	if c.Hooks.Token == "" && !loopbackListen(c.Listen) {
		add("listen", "%q is reachable from other hosts and hooks.token is empty: anyone who reaches it can have files under the roots uploaded and deleted; set hooks.token or listen on 127.0.0.1", c.Listen)
	}
	if c.Admin.Listen != "" && c.Admin.Token == "" && !loopbackListen(c.Admin.Listen) {
		add("admin.listen", "%q is reachable from other hosts and admin.token is empty: anyone who reaches it can read metrics, see the queues (admin.monitor), change them (when admin.monitor is read-write) and run the profiler (when debug.pprof is on); set admin.token or listen on 127.0.0.1", c.Admin.Listen)
	}
	// Only an endpoint written out: the defaults (no endpoint) carry path_style true.
	if ps := c.Storage.PathStyle; ps != nil && *ps && c.Storage.Endpoint != "" && awsHost(c.Storage.Endpoint) {
		add("storage.path_style", "true against AWS S3 (%s): AWS deprecated path-style requests (announced for removal since 2019) and recommends virtual-host style, the default there; leave path_style out", withoutUserinfo(c.Storage.Endpoint))
	}
	real := make([]string, len(c.Roots))
	for i, r := range c.Roots {
		real[i] = filepath.Clean(r)
		if p, err := filepath.EvalSymlinks(real[i]); err == nil {
			real[i] = p
		}
		key := fmt.Sprintf("roots[%d]", i)
		if real[i] == "/" {
			add(key, "%q is the whole filesystem: srs-offload deletes what it uploads below its roots; name the folder SRS records into", r)
			continue
		}
		var held []string
		for _, s := range systemDirs {
			if within(s, real[i]) {
				held = append(held, s)
			}
		}
		if len(held) > 0 {
			add(key, "%q holds system folders (%s): srs-offload deletes what it uploads below its roots; name the folder SRS records into", r, strings.Join(held, " "))
		}
	}
	for i := range real {
		for j := range real {
			if i != j && real[i] != "/" && real[j] != "/" && within(real[i], real[j]) && (real[i] != real[j] || i > j) {
				add(fmt.Sprintf("roots[%d]", i), "%q is inside roots[%d] %q: its files are found twice by the reconciler; list only the outer folder", c.Roots[i], j, c.Roots[j])
			}
		}
	}
	if file != "" {
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o004 != 0 {
			if raw, err := os.ReadFile(file); err == nil {
				if keys := SecretsInFile(raw); len(keys) > 0 {
					add(keys[0], "%s is readable by every user (mode %04o) and holds %s: chmod o-r it, or take the secrets from ${VAR}", file, fi.Mode().Perm(), strings.Join(keys, ", "))
				}
			}
		}
	}
	return w
}

// within reports whether path p is dir or below it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// loopbackListen reports whether a host:port only accepts connections from this host.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SecretsInFile returns the secret keys (see isSecret) a config file gives a literal value: a
// value that is empty or made only of ${VAR} references keeps the secret out of the file.
func SecretsInFile(raw []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	var keys []string
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.ScalarNode:
			if isSecret(key) && strings.TrimSpace(envVar.ReplaceAllString(n.Value, "")) != "" {
				keys = append(keys, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if key != "" {
					k = key + "." + k
				}
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", key, i))
			}
		}
	}
	walk(doc.Content[0], "")
	return keys
}
