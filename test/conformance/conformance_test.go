// The Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance), run as published
// against the cluster KUBECONFIG names, with the options the file in MESHPILOT_CONFORMANCE_OPTIONS holds.
// With MESHPILOT_REQUEST_REPORT, each request the suite sends and what came back are posted there
// as JSON (the harness checks them against meshpilot's explain) before the suite sees the response.
package conformance

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	clientset "k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	v1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/apis/v1alpha2"
	"sigs.k8s.io/gateway-api/apis/v1alpha3"
	xv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	"sigs.k8s.io/gateway-api/conformance"
	conformanceconfig "sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
)

// reportingRoundTripper is the suite's own round tripper, each exchange also posted to a URL.
type reportingRoundTripper struct {
	roundtripper.RoundTripper
	url string
}

func (r reportingRoundTripper) CaptureRoundTrip(request roundtripper.Request) (*roundtripper.CapturedRequest, *roundtripper.CapturedResponse, error) {
	start := time.Now()
	captured, response, err := r.RoundTripper.CaptureRoundTrip(request)
	report := map[string]any{
		"startMs": start.UnixMilli(), "url": request.URL.String(), "host": request.Host, "protocol": request.Protocol,
		"method": request.Method, "headers": request.Headers, "serverName": request.ServerName, "unfollowRedirect": request.UnfollowRedirect,
	}
	if err != nil {
		report["error"] = err.Error()
	}
	if response != nil {
		report["status"] = response.StatusCode
		report["location"] = http.Header(response.Headers).Get("Location")
	}
	if captured != nil {
		report["pod"], report["namespace"] = captured.Pod, captured.Namespace
	}
	if body, marshalErr := json.Marshal(report); marshalErr == nil {
		if posted, postErr := http.Post(r.url, "application/json", bytes.NewReader(body)); postErr == nil {
			_ = posted.Body.Close()
		}
	}
	return captured, response, err
}

func TestConformance(t *testing.T) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cfg, err := config.GetConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	// JSON, as kubectl speaks to custom resources; the cluster under test serves no protobuf.
	cfg.ContentType = "application/json"
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	cs, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	for _, install := range []func() error{
		func() error { return v1alpha3.Install(c.Scheme()) },
		func() error { return v1alpha2.Install(c.Scheme()) },
		func() error { return xv1alpha1.Install(c.Scheme()) },
		func() error { return v1.Install(c.Scheme()) },
		func() error { return apiextensionsv1.AddToScheme(c.Scheme()) },
	} {
		if err := install(); err != nil {
			t.Fatalf("scheme: %v", err)
		}
	}
	opts := suite.ConfigurableOptions{TimeoutConfig: conformanceconfig.DefaultTimeoutConfig()}
	path := os.Getenv("MESHPILOT_CONFORMANCE_OPTIONS")
	if path == "" {
		t.Fatal("MESHPILOT_CONFORMANCE_OPTIONS names no options file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	if err := yaml.Unmarshal(data, &opts); err != nil {
		t.Fatalf("options: %v", err)
	}
	options := suite.ConformanceOptions{ConfigurableOptions: opts, Client: c, Clientset: cs, RestConfig: cfg}
	if url := os.Getenv("MESHPILOT_REQUEST_REPORT"); url != "" {
		// The round tripper the suite would make itself, with the timeouts it would give it.
		conformanceconfig.SetupTimeoutConfig(&options.TimeoutConfig)
		options.RoundTripper = reportingRoundTripper{&roundtripper.DefaultRoundTripper{Debug: opts.Debug, TimeoutConfig: options.TimeoutConfig}, url}
	}
	conformance.RunConformanceWithOptions(t, options)
}
