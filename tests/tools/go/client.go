// A Go crypto/tls client for pinwarden's tests, built at test time with the
// distribution's Go (stdlib only). It dials 127.0.0.1:PORT, handshakes with
// -servername as SNI, writes -secret and prints the first line of the reply.
// With -count N it does N full handshakes in a row (no session cache: every
// one presents a chain) and exits: the benchmark's loop. With -target
// ADDR=NAME (repeatable) and -parallel N it runs N goroutines per target at
// once, each a handshake with that SNI and a write, and prints one line per
// connection: "NAME ok" or "NAME error: ...". With -first read|write it dials,
// lets the first Read or Write drive the handshake, then does the other, and
// prints what each returned ("write: ok", "read: error ECONNABORTED: ..."):
// how a reset connection looks to the application.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

type targets []string

func (t *targets) String() string     { return strings.Join(*t, ",") }
func (t *targets) Set(v string) error { *t = append(*t, v); return nil }

var versions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

func main() {
	addr := flag.String("connect", "", "HOST:PORT to dial")
	serverName := flag.String("servername", "", "SNI and name to verify (empty: none)")
	caFile := flag.String("cafile", "", "PEM roots to verify with")
	insecure := flag.Bool("insecure", false, "skip verification (pinning still applies)")
	tlsVersion := flag.String("tls", "any", "1.2, 1.3 or any")
	secret := flag.String("secret", "hello", "what to send after the handshake")
	certFile := flag.String("cert", "", "client certificate chain, PEM (mTLS)")
	keyFile := flag.String("key", "", "client private key, PEM (mTLS)")
	count := flag.Int("count", 0, "benchmark: N handshakes, then exit")
	var many targets
	flag.Var(&many, "target", "ADDR=SERVERNAME to dial concurrently (repeatable)")
	parallel := flag.Int("parallel", 1, "goroutines per -target")
	first := flag.String("first", "", "read or write: the operation that drives the handshake")
	flag.Parse()

	cfg := &tls.Config{ServerName: *serverName, InsecureSkipVerify: *insecure}
	if v, ok := versions[*tlsVersion]; ok {
		cfg.MinVersion, cfg.MaxVersion = v, v
	} else if *tlsVersion != "any" {
		fail("unknown -tls %q", *tlsVersion)
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail("%v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail("%v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			fail("%s: no certificate", *caFile)
		}
	}
	if len(many) > 0 {
		concurrent(cfg, many, *parallel, *secret)
		return
	}
	if *first != "" {
		operations(cfg, *addr, *first, *secret)
		return
	}
	if *count > 0 {
		for i := 0; i < *count; i++ {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", *addr, cfg)
			if err != nil {
				fail("handshake %d: %v", i, err)
			}
			c.Close()
		}
		return
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", *addr, cfg)
	if err != nil {
		fail("%v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(*secret + "\n")); err != nil {
		fail("write: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		fail("read: %v", err)
	}
	fmt.Fprintf(os.Stderr, "go-client: %s\n", versionName(c.ConnectionState().Version))
	fmt.Println(strings.TrimRight(line, "\n"))
}

// One goroutine per (target, i), all dialing at once: the handshakes of one
// process interleave on the runtime's threads.
func concurrent(base *tls.Config, many targets, parallel int, secret string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	for _, t := range many {
		addr, name, ok := strings.Cut(t, "=")
		if !ok {
			fail("-target %q: want ADDR=SERVERNAME", t)
		}
		for i := 0; i < parallel; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := base.Clone()
				cfg.ServerName = name
				<-start
				res := "ok"
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
				if err == nil {
					_, err = c.Write([]byte(secret + " " + name + "\n"))
					c.Close()
				}
				if err != nil {
					res = "error: " + err.Error()
				}
				mu.Lock()
				fmt.Println(name, res)
				mu.Unlock()
			}()
		}
	}
	close(start)
	wg.Wait()
}

// -first: Read or Write first on a connection whose handshake they drive; print
// what each returned, classified by errno.
func operations(cfg *tls.Config, addr, first, secret string) {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fail("%v", err)
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	ops := []string{"write", "read"}
	if first == "read" {
		ops = []string{"read", "write"}
	}
	for _, op := range ops {
		if op == "write" {
			_, err = c.Write([]byte(secret + "\n"))
		} else {
			_, err = c.Read(make([]byte, 100))
		}
		fmt.Printf("%s: %s\n", op, errorClass(err))
	}
}

func errorClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNABORTED):
		return "error ECONNABORTED: " + err.Error()
	case errors.Is(err, syscall.ECONNRESET):
		return "error ECONNRESET: " + err.Error()
	case errors.Is(err, io.EOF):
		return "EOF: " + err.Error()
	}
	return "error: " + err.Error()
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-client: "+format+"\n", a...)
	os.Exit(1)
}
