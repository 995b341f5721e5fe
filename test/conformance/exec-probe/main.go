// Command exec-probe runs one command in a pod over pods/exec the way the Gateway API
// conformance suite's MeshPod.request does (client-go's SPDY executor, stdout and stderr,
// no stdin, no TTY), and prints what came back as one JSON object.
//
// Usage: KUBECONFIG=... exec-probe -namespace NS -pod NAME [-container echo] -- COMMAND ARGS...
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// result is what the caller sees: the streams as bytes (base64 in JSON), the error's text, and
// the exit code client-go reports (-1 when the error carries none).
type result struct {
	Stdout   []byte `json:"stdout"`
	Stderr   []byte `json:"stderr"`
	Error    string `json:"error"`
	ExitCode int    `json:"exitCode"`
}

func main() {
	namespace := flag.String("namespace", "default", "the pod's namespace")
	pod := flag.String("pod", "", "the pod's name")
	container := flag.String("container", "echo", "the container to run in")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	req := clientset.CoreV1().RESTClient().Post().
		Resource("pods").
		Name(*pod).
		Namespace(*namespace).
		SubResource("exec").
		Param("container", *container).
		VersionedParams(&v1.PodExecOptions{
			Container: *container,
			Command:   flag.Args(),
			Stdin:     false,
			Stdout:    true,
			Stderr:    true,
			TTY:       false,
		}, scheme.ParameterCodec)

	out := result{ExitCode: -1}
	executor, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err == nil {
		var stdout, stderr bytes.Buffer
		err = executor.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		out.Stdout, out.Stderr = stdout.Bytes(), stderr.Bytes()
	}
	if err != nil {
		out.Error = err.Error()
		var exitErr utilexec.ExitError
		if errors.As(err, &exitErr) {
			out.ExitCode = exitErr.ExitStatus()
		}
	} else {
		out.ExitCode = 0
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
