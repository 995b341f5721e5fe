//go:build tools

// Istio's echo application (istio.io/istio pkg/test/echo, Apache-2.0, from the Go module proxy),
// the program the Gateway API suite's mesh cases run as `echo-advanced`: its server answers in
// the key=value lines the suite parses, its `client` sends requests from a mesh pod.
package tools

import (
	_ "istio.io/istio/pkg/test/echo/cmd/client"
	_ "istio.io/istio/pkg/test/echo/cmd/server"
)
