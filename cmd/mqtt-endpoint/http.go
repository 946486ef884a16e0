package main

import (
	"errors"
	"fmt"
	"net/http"

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
		var problems []error
		if err := fwd.Ready(); err != nil {
			problems = append(problems, fmt.Errorf("sink: %w", err))
		}
		if st := reg.Status(); st.LastError != nil {
			// The last good registry is still served; report the broken file without failing readiness.
			w.Header().Set("X-Registry-Error", st.LastError.Error())
		}
		if err := errors.Join(problems...); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	r.Handle("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return r
}
