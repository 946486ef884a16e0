package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mqtt-endpoint/bridge/registry"
	"mqtt-endpoint/source"
)

// routes serves the internal HTTP port: the command sink, health, readiness and metrics.
func routes(commands http.Handler, reg *registry.Store, fwd *source.Forwarder, metrics *prometheus.Registry) http.Handler {
	r := chi.NewRouter()
	r.Post("/", commands.ServeHTTP)
	r.Post("/api/command/v1alpha1/apps/{app}/devices/{device}", commands.ServeHTTP)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// One line per check; the registry keeps serving its last good version when a reload fails.
		ready := true
		var b strings.Builder
		if err := fwd.Ready(); err != nil {
			ready = false
			fmt.Fprintf(&b, "sink: not ready: %v\n", err)
		} else {
			b.WriteString("sink: ok\n")
		}
		st := reg.Status()
		fmt.Fprintf(&b, "registry: ok (%d applications, %d devices)\n", st.Apps, st.Devices)
		if st.LastError != nil {
			first, _, _ := strings.Cut(st.LastError.Error(), "\n")
			fmt.Fprintf(&b, "registry: last reload failed, serving the previous registry: %s\n", first)
		}
		b.WriteString("listeners: ok\n")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, b.String())
	})
	r.Handle("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return r
}
