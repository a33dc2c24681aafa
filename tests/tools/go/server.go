// A Go crypto/tls server for pinwarden's mTLS tests, built at test time with
// the distribution's Go (stdlib only). It listens on 127.0.0.1 (an ephemeral
// port, written to -port-file), requires a client certificate issued by
// -client-ca, appends the first piece of application data of every
// connection to -record (one line) and answers "ok". SIGTERM stops it with status 0.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

var versions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

func main() {
	certFile := flag.String("cert", "", "PEM chain the server presents (leaf first)")
	keyFile := flag.String("key", "", "PEM private key of the leaf")
	clientCA := flag.String("client-ca", "", "require client certificates issued by this CA")
	portFile := flag.String("port-file", "", "write the bound port here once listening")
	record := flag.String("record", "", "append the application data received to this file")
	tlsVersion := flag.String("tls", "any", "1.2, 1.3 or any")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("%v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if v, ok := versions[*tlsVersion]; ok {
		cfg.MinVersion, cfg.MaxVersion = v, v
	}
	if *clientCA != "" {
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			fail("%v", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AppendCertsFromPEM(pem)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("%v", err)
	}
	var mu sync.Mutex
	out := os.Stdout
	if *record != "" {
		if out, err = os.OpenFile(*record, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			fail("%v", err)
		}
	}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		os.Exit(0)
	}()
	if *portFile != "" {
		port := ln.Addr().(*net.TCPAddr).Port
		if err := os.WriteFile(*portFile, []byte(fmt.Sprintf("%d\n", port)), 0o644); err != nil {
			fail("%v", err)
		}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fail("%v", err)
		}
		go func(c net.Conn) {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			t := tls.Server(c, cfg)
			if err := t.Handshake(); err != nil {
				fmt.Fprintf(os.Stderr, "go-server: %s: handshake failed: %v\n", c.RemoteAddr(), err)
				return
			}
			// one read: both test clients send their secret in one write
			buf := make([]byte, 4096)
			n, err := t.Read(buf)
			if n > 0 {
				data := strings.TrimRight(string(buf[:n]), "\n") + "\n"
				mu.Lock()
				out.WriteString(data)
				mu.Unlock()
			}
			if err == nil {
				t.Write([]byte("ok\n"))
			}
		}(c)
	}
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-server: "+format+"\n", a...)
	os.Exit(1)
}
