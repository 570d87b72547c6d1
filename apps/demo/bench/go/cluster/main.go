// One golang/groupcache peer of the cluster benchmark (../../cluster.bench.ts): Go's own
// HTTPPool on --port, and with --api-port the demo's user API, answering as the tinycache
// demo does (apps/demo/src/api.ts):
//
//	GET /api?key=K -> 200 the score as text; 404 "K not exist"; 400 without a key
//	GET /healthz   -> 200 "ok" (on both ports: the benchmark polls it until it answers)
//
// The data is the demo's SQLite database, dumped by the benchmark as name<TAB>score lines
// (--data), so both clusters serve the same bytes without a SQLite driver here.
//
// Built with GO111MODULE=off and GOPATH=/usr/share/gocode (Debian's
// golang-github-golang-groupcache-dev), like the transport-http interop test's peer.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang/groupcache"
)

// errNotFound marks a key missing from the database, so the API can answer 404. A peer's
// error reaches the caller as a failed fetch, and groupcache then loads locally, so the
// API node's own getter produces this error for every missing key.
type errNotFound struct{ key string }

func (e errNotFound) Error() string { return e.key + " not exist" }

func load(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	db := make(map[string]string, 1<<18)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, score, ok := strings.Cut(sc.Text(), "\t"); ok {
			db[name] = score
		}
	}
	return db, sc.Err()
}

func listen(port int) net.Listener {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return ln
}

func healthz(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }

func main() {
	port := flag.Int("port", 0, "peer protocol port")
	self := flag.String("self", "", "this peer's base URL")
	peers := flag.String("peers", "", "comma-separated base URLs of every peer, self included")
	apiPort := flag.Int("api-port", 0, "serve the user API on this port (0: none)")
	data := flag.String("data", "", "the database as name<TAB>score lines")
	idle := flag.Int("idle-conns-per-host", 256, "idle keep-alive connections kept per peer")
	cacheBytes := flag.Int64("cache-bytes", 64<<20, "group cache size (as the demo's --cache-bytes)")
	exitWithStdin := flag.Bool("exit-with-stdin", false, "exit when stdin closes")
	flag.Parse()

	if *exitWithStdin {
		// The benchmark holds our stdin: when it ends (even by SIGKILL) we go too.
		go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	}

	db, err := load(*data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	// http.DefaultTransport keeps only 2 idle connections per host: with 64 requests in
	// flight, most peer fetches would open a new TCP connection. Give Go enough.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = *idle * 4
	transport.MaxIdleConnsPerHost = *idle
	pool := groupcache.NewHTTPPoolOpts(*self, nil)
	pool.Transport = func(context.Context) http.RoundTripper { return transport }
	pool.Set(strings.Split(*peers, ",")...)

	group := groupcache.NewGroup("scores", *cacheBytes, groupcache.GetterFunc(
		func(_ context.Context, key string, dest groupcache.Sink) error {
			if v, ok := db[key]; ok {
				return dest.SetString(v)
			}
			return errNotFound{key}
		}))

	peerMux := http.NewServeMux()
	peerMux.Handle("/_groupcache/", pool)
	peerMux.HandleFunc("/healthz", healthz)
	peerLn := listen(*port)
	go func() { (&http.Server{Handler: peerMux, IdleTimeout: time.Minute}).Serve(peerLn) }()

	if *apiPort != 0 {
		api := http.NewServeMux()
		api.HandleFunc("/healthz", healthz)
		api.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
			key := r.URL.Query().Get("key")
			if key == "" {
				http.Error(w, "missing query parameter: key (e.g. /api?key=Tom)", http.StatusBadRequest)
				return
			}
			var v string
			if err := group.Get(r.Context(), key, groupcache.StringSink(&v)); err != nil {
				var nf errNotFound
				if errors.As(err, &nf) {
					// The demo's exact 404: "K not exist", no newline.
					w.Header().Set("Content-Type", "text/plain; charset=utf-8")
					w.WriteHeader(http.StatusNotFound)
					w.Write([]byte(nf.Error()))
				} else {
					http.Error(w, "failed to load "+key+": "+err.Error(), http.StatusBadGateway)
				}
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(v))
		})
		apiLn := listen(*apiPort)
		go func() { (&http.Server{Handler: api, IdleTimeout: time.Minute}).Serve(apiLn) }()
	}
	select {}
}
