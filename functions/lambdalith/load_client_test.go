package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// rawClient is the load phase's HTTP/1.1 client: one keep-alive connection,
// requests written from a reused buffer and responses parsed in place, as wrk
// does. net/http's client (loadClient) costs some 50 µs of CPU per request in
// its transport goroutines, header maps and body readers; on a 2-core machine
// that is CPU the server under test does not get, and the report measures the
// generator as much as the app. The server is Go's net/http, whose small
// answers carry a Content-Length; an answer without one (chunked) is an error
// here, never a silent misread.
type rawClient struct {
	addr string // host:port
	conn net.Conn
	r    *bufio.Reader
	req  []byte // the request being written (reused)
	body []byte // the last answer's body (reused; valid until the next call)
}

func newRawClient(addr string) *rawClient { return &rawClient{addr: addr} }

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// post sends one POST with a JSON body and returns the status and the body of
// the answer. A connection that fails is closed; the next call dials again.
// A request that failed on a reused connection before any byte of an answer
// came is not retried: the caller counts it (a load run must not hide errors).
func (c *rawClient) post(path, token, idemKey string, body []byte) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
	}
	b := append(c.req[:0], "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.addr...)
	b = append(b, "\r\nContent-Type: application/json\r\nAuthorization: Bearer "...)
	b = append(b, token...)
	if idemKey != "" {
		b = append(b, "\r\nIdempotency-Key: "...)
		b = append(b, idemKey...)
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.req = b
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.close()
		return 0, nil, err
	}
	status, err := c.readAnswer()
	if err != nil {
		c.close()
		return status, nil, err
	}
	return status, c.body, nil
}

// readAnswer reads one HTTP/1.1 answer: status line, headers, and a body of
// Content-Length bytes into c.body.
func (c *rawClient) readAnswer() (int, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, closing := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return status, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return status, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return status, fmt.Errorf("a %s answer: this client reads Content-Length bodies only", value)
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return status, errors.New("an answer without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return status, err
	}
	if closing {
		c.close()
	}
	return status, nil
}
