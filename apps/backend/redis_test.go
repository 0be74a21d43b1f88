package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run against a real redis-server (the Debian package), started on
// a free port in a temporary directory. A missing redis-server fails the run:
// skipping would hide a missing install step in CI.

// testRedisAddr is the address of the Redis shared by the package's tests.
var testRedisAddr string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	redis.SetLogger(redisLogger{newLogger(io.Discard)}) // outages are expected here
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: redis-server is not on PATH; these tests need a real Redis: apt-get install redis-server")
		return 1
	}
	dir, err := os.MkdirTemp("", "backend-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	r, err := startRedis(dir, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting redis-server:", err)
		return 1
	}
	defer r.stop()
	testRedisAddr = r.addr
	return m.Run()
}

// redisProcess is one redis-server child process.
type redisProcess struct {
	dir  string
	port int
	addr string
	cmd  *exec.Cmd
	done chan error
	once sync.Once
}

// startRedis starts redis-server in dir on port, or on a free port when port
// is 0 (retrying if another process takes the port first), and waits until
// it answers PING.
func startRedis(dir string, port int) (*redisProcess, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		r, err := startRedisOnce(dir, p)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if port == 0 {
			continue
		}
		time.Sleep(200 * time.Millisecond) // the same port may need a moment to be released
	}
	return nil, lastErr
}

func startRedisOnce(dir string, port int) (*redisProcess, error) {
	logFile := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", logFile,
	)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisProcess{dir: dir, port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()

	client := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-r.done:
			out, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("redis-server on port %d exited (%v): %s", port, err, tail(out, 500))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer PING within 10s: %w", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop kills the process and waits for it to exit; calling it again is a no-op.
func (r *redisProcess) stop() {
	r.once.Do(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// newTestStore returns a store on the shared Redis, emptied first.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	s := NewStore(testRedisAddr, "")
	t.Cleanup(func() { s.Close() })
	if err := s.rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	return s
}
