package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mqtt-endpoint/bridge"
	"mqtt-endpoint/bridge/registry"
	"mqtt-endpoint/source"
)

// routes serves the internal HTTP port: the command sink, health, readiness and metrics.
func routes(commands http.Handler, srv *bridge.Server, reg *registry.Store, fwd *source.Forwarder, metrics *prometheus.Registry) http.Handler {
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
		if err := srv.Ready(); err != nil {
			ready = false
			fmt.Fprintf(&b, "listeners: %v\n", err)
		} else {
			b.WriteString("listeners: ok\n")
		}
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, b.String())
	})
	r.Handle("/metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return r
}

// registryCollector exports the registry's reload status and object counts.
type registryCollector struct{ reg *registry.Store }

var (
	registryObjects  = prometheus.NewDesc("mqtt_endpoint_registry_objects", "Objects in the registry being served, by kind.", []string{"kind"}, nil)
	registryReloads  = prometheus.NewDesc("mqtt_endpoint_registry_reloads_total", "Registry loads by outcome (success, failure).", []string{"outcome"}, nil)
	registryHealthy  = prometheus.NewDesc("mqtt_endpoint_registry_last_reload_success", "1 when the last look at the registry files loaded them, 0 when it failed and the previous registry is served.", nil, nil)
	registryLoadedAt = prometheus.NewDesc("mqtt_endpoint_registry_loaded_timestamp_seconds", "When the registry being served was loaded.", nil, nil)
)

func (c registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- registryObjects
	ch <- registryReloads
	ch <- registryHealthy
	ch <- registryLoadedAt
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.reg.Status()
	ch <- prometheus.MustNewConstMetric(registryObjects, prometheus.GaugeValue, float64(st.Apps), "application")
	ch <- prometheus.MustNewConstMetric(registryObjects, prometheus.GaugeValue, float64(st.Devices), "device")
	ch <- prometheus.MustNewConstMetric(registryReloads, prometheus.CounterValue, float64(st.Reloads), "success")
	ch <- prometheus.MustNewConstMetric(registryReloads, prometheus.CounterValue, float64(st.Failures), "failure")
	healthy := 1.0
	if st.LastError != nil {
		healthy = 0
	}
	ch <- prometheus.MustNewConstMetric(registryHealthy, prometheus.GaugeValue, healthy)
	if !st.Loaded.IsZero() {
		ch <- prometheus.MustNewConstMetric(registryLoadedAt, prometheus.GaugeValue, float64(st.Loaded.UnixNano())/1e9)
	}
}
