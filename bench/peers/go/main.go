// The Go peer of tests/programs/http_server.c for make bench: what a user
// would write instead of fiberizing a thread-per-connection server, one
// goroutine per connection on Go's own M:N scheduler (GOMAXPROCS left at
// its default).  It answers the same bytes as the C server, so wrk measures
// the runtimes and not the responses: net/http is not used because it adds
// a Date header and its own parsing.  Standard library only, so it builds
// offline with the Debian golang-go package.
//
//	http_go [PORT]    127.0.0.1:PORT (0 or none: any free port)
//
// Prints "listening on PORT" once ready; exits 0 on SIGTERM or SIGINT.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const bodyBytes = 1024

// The whole response, built once: every request gets these bytes.
func buildResponse() []byte {
	const pattern = "fiberize demo body\n"
	body := make([]byte, bodyBytes)
	for i := range body {
		body[i] = pattern[i%len(pattern)]
	}
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"+
		"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n", bodyBytes)
	return append([]byte(head), body...)
}

var (
	response    = buildResponse()
	endOfHead   = []byte("\r\n\r\n")
	closeHeader = []byte("connection: close")
)

// containsFold is strcasestr for an ASCII needle, without the copy that
// bytes.ToLower would make on every request.
func containsFold(s, needle []byte) bool {
	for i := 0; i+len(needle) <= len(s); i++ {
		if bytes.EqualFold(s[i:i+len(needle)], needle) {
			return true
		}
	}
	return false
}

// One request per "\r\n\r\n" in an 8 KiB buffer, as the C server reads
// them: a head that does not fit ends the connection.
func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 8192)
	have := 0
	for {
		// One byte kept free, as the C server keeps one for its '\0'.
		n, err := c.Read(buf[have : len(buf)-1])
		have += n
		closeAfter := false
		for {
			end := bytes.Index(buf[:have], endOfHead)
			if end < 0 {
				break
			}
			if containsFold(buf[:end], closeHeader) {
				closeAfter = true
			}
			if _, err := c.Write(response); err != nil {
				return
			}
			have = copy(buf, buf[end+4:have])
		}
		// The bytes that came with an error (end of stream) are answered
		// first; a read error or EOF then ends the connection.
		if err != nil || closeAfter || have == len(buf)-1 {
			return
		}
	}
}

func main() {
	port := 0
	if len(os.Args) > 1 {
		port, _ = strconv.Atoi(os.Args[1])
	}
	// As the C server does: the soft fd limit up to the hard one, for
	// 10,000 connections.
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()

	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "http_go:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", l.Addr().(*net.TCPAddr).Port)

	for {
		// Go sets TCP_NODELAY on accepted connections itself.
		c, err := l.Accept()
		if err != nil {
			// Out of fds: wait for connections to close, as the C server does.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(time.Millisecond)
				continue
			}
			if errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR) {
				continue
			}
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(1)
		}
		go serve(c)
	}
}
