// Command grpcgo is grpc-go's xDS client for meshpilot's interop tests, with the CLI of
// ../xds_client.py: it calls /meshpilot.test.Echo/Whoami through an xds:/// target and
// prints one JSON line, {"counts": {"<backend name>": n}, "errors": {"<CODE>: <details>": n},
// "calls": [{"backend": "<name>", "ms": t} or {"error": "<CODE>: <details>", "ms": t}, ...]}.
//
// The xDS bootstrap comes from GRPC_XDS_BOOTSTRAP_CONFIG (JSON text) or GRPC_XDS_BOOTSTRAP
// (a file), read by grpc-go itself. Exit status: 0 after the calls, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS LB policies
)

const whoamiMethod = "/meshpilot.test.Echo/Whoami"

// rawCodec sends and receives message bytes as they are: the test backends speak raw bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ",") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

type options struct {
	target        string
	method        string
	count         int
	timeout       time.Duration
	readyTimeout  time.Duration
	verbose       bool
	interval      time.Duration
	metadataPairs []string
	cycleKey      string
	cycleValues   []string
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "grpcgo: "+format+"\n", args...)
	os.Exit(2)
}

func parseOptions() options {
	var headers headerFlags
	target := flag.String("target", "", "e.g. xds:///reviews.default.svc.cluster.local:9080")
	count := flag.Int("count", 1, "number of calls")
	timeoutMs := flag.Int("timeout-ms", 2000, "deadline of each call in ms")
	readyMs := flag.Int("ready-timeout-ms", 20000, "how long to wait for READY or TRANSIENT_FAILURE before the first call (0 = do not wait)")
	verbose := flag.Bool("verbose", false, "log channel states to stderr")
	method := flag.String("method", whoamiMethod, "full method path")
	intervalMs := flag.Int("interval-ms", 0, "pause between calls in ms")
	cycle := flag.String("header-cycle", "", "key:v1,v2,...: call i also sends key with value v[i mod n]")
	flag.Var(&headers, "header", "request metadata key:value, repeatable; the key is lower-cased")
	flag.Parse()
	if !strings.HasPrefix(*target, "xds:") {
		usage("--target must be an xds: URI, e.g. xds:///name:port")
	}
	if *count < 0 || *timeoutMs <= 0 || *readyMs < 0 || *intervalMs < 0 {
		usage("--count, --interval-ms and --ready-timeout-ms must be >= 0, --timeout-ms > 0")
	}
	if os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP") == "" {
		usage("set GRPC_XDS_BOOTSTRAP_CONFIG (JSON text) or GRPC_XDS_BOOTSTRAP (file path)")
	}
	opts := options{target: *target, method: *method, count: *count, verbose: *verbose,
		timeout: time.Duration(*timeoutMs) * time.Millisecond, readyTimeout: time.Duration(*readyMs) * time.Millisecond,
		interval: time.Duration(*intervalMs) * time.Millisecond}
	for _, header := range headers {
		key, value, ok := strings.Cut(header, ":")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" || strings.HasPrefix(key, ":") {
			usage("--header must look like key:value, got %q", header)
		}
		opts.metadataPairs = append(opts.metadataPairs, key, strings.TrimSpace(value))
	}
	if *cycle != "" {
		key, values, ok := strings.Cut(*cycle, ":")
		opts.cycleKey = strings.ToLower(strings.TrimSpace(key))
		if !ok || opts.cycleKey == "" || strings.HasPrefix(opts.cycleKey, ":") || values == "" {
			usage("--header-cycle must look like key:v1,v2, got %q", *cycle)
		}
		for _, v := range strings.Split(values, ",") {
			opts.cycleValues = append(opts.cycleValues, strings.TrimSpace(v))
		}
	}
	return opts
}

// waitReady only affects timing: calls are made afterwards either way, without wait-for-ready,
// so a failing route shows up as errors instead of a hang.
func waitReady(conn *grpc.ClientConn, timeout time.Duration, verbose bool) {
	if timeout <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn.Connect()
	for {
		state := conn.GetState()
		if verbose {
			fmt.Fprintf(os.Stderr, "grpcgo: channel %s\n", state)
		}
		if state == connectivity.Ready || state == connectivity.TransientFailure {
			return
		}
		if !conn.WaitForStateChange(ctx, state) {
			fmt.Fprintf(os.Stderr, "grpcgo: channel still %s after %s, calling anyway\n", state, timeout)
			return
		}
	}
}

// codeNames spells status codes as the other clients do (PERMISSION_DENIED, not PermissionDenied).
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

func errorKey(err error) string {
	st := status.Convert(err)
	name, ok := codeNames[st.Code()]
	if !ok {
		name = "UNKNOWN"
	}
	return name + ": " + st.Message()
}

func backendName(body []byte) (string, error) {
	var answer struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", err
	}
	if answer.Name == nil {
		return "", errors.New("name is missing")
	}
	return *answer.Name, nil
}

// callOnce makes call i and names its outcome: the backend that answered, or the error.
func callOnce(conn *grpc.ClientConn, opts options, i int) (backend string, failure string) {
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, opts.metadataPairs...)
	if len(opts.cycleValues) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, opts.cycleKey, opts.cycleValues[i%len(opts.cycleValues)])
	}
	request, response := []byte{}, []byte{}
	if err := conn.Invoke(ctx, opts.method, &request, &response, grpc.ForceCodec(rawCodec{})); err != nil {
		return "", errorKey(err)
	}
	name, err := backendName(response)
	if err != nil {
		return "", fmt.Sprintf("BAD_RESPONSE: %v: %.200q", err, response)
	}
	return name, ""
}

type callRecord struct {
	Backend string `json:"backend,omitempty"`
	Error   string `json:"error,omitempty"`
	Ms      int64  `json:"ms"`
}

type report struct {
	Counts map[string]int `json:"counts"`
	Errors map[string]int `json:"errors"`
	Calls  []callRecord   `json:"calls"`
}

func main() {
	opts := parseOptions()
	out := report{Counts: map[string]int{}, Errors: map[string]int{}, Calls: []callRecord{}}
	conn, err := grpc.NewClient(opts.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		out.Errors[errorKey(err)]++
	} else {
		defer conn.Close()
		waitReady(conn, opts.readyTimeout, opts.verbose)
		for i := range opts.count {
			if i > 0 && opts.interval > 0 {
				time.Sleep(opts.interval)
			}
			started := time.Now()
			backend, failure := callOnce(conn, opts, i)
			out.Calls = append(out.Calls, callRecord{Backend: backend, Error: failure, Ms: time.Since(started).Milliseconds()})
			if failure != "" {
				out.Errors[failure]++
			} else {
				out.Counts[backend]++
			}
		}
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
