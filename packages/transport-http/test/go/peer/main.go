// A golang/groupcache peer for tinycache's mixed-cluster test (src/go-interop.test.ts).
//
// It serves group "scores" through groupcache's own HTTPPool on --port and a small
// control server on --client-port, mirroring test/cluster-node.ts:
//   GET /get?key=K -> group.Get through groupcache (200 value / 500 error text)
//   GET /stats     -> the group's counters as JSON
// Every getter call prints {"event":"load","key":K}; {"event":"ready"} once both listen.
//
// Built with GO111MODULE=off and GOPATH=/usr/share/gocode (Debian's
// golang-github-golang-groupcache-dev), so no module download is needed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/golang/groupcache"
)

var db = map[string]string{"Tom": "630", "Jack": "589", "Sam": "567"}

func emit(v map[string]interface{}) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func lookup(key string) (string, bool) {
	if v, ok := db[key]; ok {
		return v, true
	}
	if len(key) > 1 && key[0] == 'k' {
		for _, c := range key[1:] {
			if c < '0' || c > '9' {
				return "", false
			}
		}
		return "v" + key[1:], true
	}
	return "", false
}

func main() {
	port := flag.Int("port", 0, "peer protocol port")
	self := flag.String("self", "", "this peer's base URL")
	peers := flag.String("peers", "", "comma-separated base URLs of every peer, self included")
	clientPort := flag.Int("client-port", 0, "control server port")
	flag.Parse()

	pool := groupcache.NewHTTPPoolOpts(*self, nil)
	pool.Set(strings.Split(*peers, ",")...)

	group := groupcache.NewGroup("scores", 64<<20, groupcache.GetterFunc(
		func(_ context.Context, key string, dest groupcache.Sink) error {
			emit(map[string]interface{}{"event": "load", "key": key})
			if v, ok := lookup(key); ok {
				return dest.SetString(v)
			}
			return errors.New(key + " not exist")
		}))

	peerLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctlLn, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *clientPort))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	ctl := http.NewServeMux()
	ctl.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		var v string
		if err := group.Get(r.Context(), r.URL.Query().Get("key"), groupcache.StringSink(&v)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte(v))
	})
	ctl.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		s := &group.Stats
		json.NewEncoder(w).Encode(map[string]int64{
			"gets": s.Gets.Get(), "cacheHits": s.CacheHits.Get(), "peerLoads": s.PeerLoads.Get(),
			"peerErrors": s.PeerErrors.Get(), "loads": s.Loads.Get(), "localLoads": s.LocalLoads.Get(),
			"localLoadErrs": s.LocalLoadErrs.Get(), "serverRequests": s.ServerRequests.Get(),
		})
	})

	go func() { http.Serve(peerLn, pool) }()
	go func() { http.Serve(ctlLn, ctl) }()
	emit(map[string]interface{}{"event": "ready"})
	select {}
}
