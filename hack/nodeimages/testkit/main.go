// A tiny static test program for the node tests (tests/node), packed into a one-layer image:
//
//	testkit serve ADDR           HTTP server: /healthz says ok, / says the hostname
//	testkit get URL [TRIES]      GET URL, retrying once a second; print the body, exit 1 on failure
//	testkit api PATH             GET PATH from the API server as the Pod's service account
//	                             (https://kubernetes.default.svc, its token and CA)
//	testkit write PATH TEXT      write TEXT to PATH
//	testkit cat PATH             print PATH
//
// It exits promptly on SIGTERM, so Pods using it never wait out their grace period.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: testkit serve ADDR | get URL [TRIES] | api PATH | write PATH TEXT | cat PATH")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		need(args, 1)
		serve(args[0])
	case "get":
		need(args, 1)
		tries := 30
		if len(args) > 1 {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				fail("TRIES must be a number: " + args[1])
			}
			tries = n
		}
		get(args[0], tries)
	case "api":
		need(args, 1)
		api(args[0])
	case "write":
		need(args, 2)
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fail(err.Error())
		}
	case "cat":
		need(args, 1)
		data, err := os.ReadFile(args[0])
		if err != nil {
			fail(err.Error())
		}
		os.Stdout.Write(data)
	default:
		fail("unknown command " + os.Args[1])
	}
}

func serve(addr string) {
	hostname, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, hostname) })
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		<-stop
		os.Exit(0)
	}()
	if err := http.ListenAndServe(addr, mux); err != nil {
		fail(err.Error())
	}
}

// get retries because a new Service answers a moment after its endpoints are ready.
func get(url string, tries int) {
	client := http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < tries; i++ {
		response, err := client.Get(url)
		if err == nil {
			body, readErr := io.ReadAll(response.Body)
			response.Body.Close()
			if readErr == nil && response.StatusCode == http.StatusOK {
				os.Stdout.Write(body)
				return
			}
			err = fmt.Errorf("status %d, read error %v", response.StatusCode, readErr)
		}
		last = err
		time.Sleep(time.Second)
	}
	fail(fmt.Sprintf("GET %s failed %d times, last: %v", url, tries, last))
}

// api proves what an in-cluster client relies on: the Service DNS name, the ClusterIP in front of
// the API server, a serving certificate naming kubernetes.default.svc, and a projected token.
func api(path string) {
	const secrets = "/var/run/secrets/kubernetes.io/serviceaccount/"
	token, err := os.ReadFile(secrets + "token")
	if err != nil {
		fail(err.Error())
	}
	ca, err := os.ReadFile(secrets + "ca.crt")
	if err != nil {
		fail(err.Error())
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		fail("no certificate in " + secrets + "ca.crt")
	}
	client := http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	}
	request, err := http.NewRequest(http.MethodGet, "https://kubernetes.default.svc"+path, nil)
	if err != nil {
		fail(err.Error())
	}
	request.Header.Set("Authorization", "Bearer "+string(token))
	response, err := client.Do(request)
	if err != nil {
		fail(err.Error())
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	fmt.Printf("%d %s", response.StatusCode, body)
}

func need(args []string, n int) {
	if len(args) < n {
		fail(fmt.Sprintf("want %d arguments, got %d", n, len(args)))
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "testkit:", message)
	os.Exit(1)
}
