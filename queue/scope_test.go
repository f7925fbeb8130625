package queue_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/srs-offload/srs-offload/fileid"
	"github.com/srs-offload/srs-offload/queue"
)

func TestParseScope(t *testing.T) {
	for _, c := range []struct {
		in, vol string
		ok      bool
	}{
		{"", "", true}, {"node", "", true}, {"shared:vol", "vol", true}, {"shared:nfs-1.a", "nfs-1.a", true},
		{"shared:", "", false}, {"shared:a b", "", false}, {"shared:a@b", "", false}, {"shared:{x}", "", false},
		{"shared:a:b", "", false}, {"Node", "", false}, {"cluster", "", false},
	} {
		vol, err := queue.ParseScope(c.in)
		if (err == nil) != c.ok || vol != c.vol {
			t.Errorf("ParseScope(%q) = %q, %v; want %q, ok %v", c.in, vol, err, c.vol, c.ok)
		}
	}
}

// A shared volume's task has one id on every host: each mounts the volume where it likes and
// sees its own device number (NFS), yet their hooks and reconcilers must make the same task.
func TestSharedTaskIDSameOnEveryHost(t *testing.T) {
	file := fileid.ID{Dev: 41, Ino: 1234, Size: 5000, MtimeNs: 99}
	a := queue.Offload{Kind: queue.KindHLS, Path: "/mnt/a/live/cam1-3.ts", Key: "live/cam1-3.ts", File: file}
	queue.Scope{Volume: "vol", Mount: "/mnt/a", Node: "srs1"}.Stamp(&a)
	b := a
	b.Path, b.File.Dev = "/srv/shared/live/cam1-3.ts", 77
	queue.Scope{Volume: "vol", Mount: "/srv/shared", Node: "srs2"}.Stamp(&b)
	if a.TaskID() != b.TaskID() {
		t.Fatalf("one file on one volume, two hosts: task ids %s and %s", a.TaskID(), b.TaskID())
	}
	for name, change := range map[string]func(*queue.Offload){
		"another volume": func(p *queue.Offload) { p.Volume = "other" },
		"another path":   func(p *queue.Offload) { p.Path = "/mnt/a/live/cam1-4.ts" },
		"another inode":  func(p *queue.Offload) { p.File.Ino++ },
		"another size":   func(p *queue.Offload) { p.File.Size++ },
		"another mtime":  func(p *queue.Offload) { p.File.MtimeNs++ },
		"a node's task":  func(p *queue.Offload) { p.Volume, p.Mount, p.Node = "", "", "" },
	} {
		c := a
		change(&c)
		if c.TaskID() == a.TaskID() {
			t.Errorf("%s: same task id %s", name, a.TaskID())
		}
	}
	// A node's task keeps its id of before (path and device): upgrades find their tasks.
	n := queue.Offload{Kind: queue.KindHLS, Path: "/mnt/a/live/cam1-3.ts", File: file}
	if got, want := n.TaskID(), "hls-"; got[:4] != want || got == a.TaskID() {
		t.Fatalf("node task id %s", got)
	}
	n2 := n
	n2.File.Dev++
	if n.TaskID() == n2.TaskID() {
		t.Fatal("a node's task id ignores the device")
	}

	// The payload carries the shared fields, and the id survives the round trip.
	raw, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := queue.DecodeOffload(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Volume != "vol" || back.Mount != "/mnt/a" || back.Node != "srs1" || back.TaskID() != a.TaskID() {
		t.Fatalf("decoded %+v", back)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	if m["volume"] != "vol" {
		t.Fatalf("payload %s lacks volume", raw)
	}
}

func TestScopeLocal(t *testing.T) {
	p := queue.Offload{Kind: queue.KindHLS, Path: "/mnt/a/live/cam1-3.ts", Playlist: "/mnt/a/live/cam1.m3u8", File: fileid.ID{Ino: 5}}
	queue.Scope{Volume: "vol", Mount: "/mnt/a", Node: "srs1"}.Stamp(&p)
	here := queue.Scope{Volume: "vol", Mount: "/srv/v", Node: "w1"}
	l, err := here.Local(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path != "/srv/v/live/cam1-3.ts" || l.Playlist != "/srv/v/live/cam1.m3u8" || l.TaskID() != p.TaskID() || l.Node != "srs1" {
		t.Fatalf("Local = %+v", l)
	}
	if _, err := (queue.Scope{Volume: "other", Mount: "/srv/v"}).Local(p); !errors.Is(err, queue.ErrOtherVolume) {
		t.Fatalf("another volume's worker: %v", err)
	}
	bad := p
	bad.Path = "/elsewhere/x.ts"
	if _, err := here.Local(bad); err == nil {
		t.Fatal("a path outside the task's mount point was accepted")
	}
	node := queue.Offload{Path: "/data/x.ts"}
	if l, err := here.Local(node); err != nil || l.Path != "/data/x.ts" {
		t.Fatalf("a node's task changed: %+v %v", l, err)
	}
	if got := here.QueueNode("w1"); got != "shared:vol" || queue.Name(queue.KindHLS, got) != "hls@shared:vol" {
		t.Fatalf("queue node %q", got)
	}
	if got := (queue.Scope{}).QueueNode("w1"); got != "w1" {
		t.Fatalf("node scope's queue node %q", got)
	}
}
