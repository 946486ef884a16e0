package bridge

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"mqtt-endpoint/source"
)

// metrics counts what the bridge does; nil-safe so tests may leave the registerer out.
type metrics struct {
	connects    *prometheus.CounterVec
	publishes   *prometheus.CounterVec
	connections prometheus.GaugeFunc
	commands    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, connected func() float64) *metrics {
	m := &metrics{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_endpoint_connects_total",
			Help: "Connection attempts by outcome (accepted, refused).",
		}, []string{"outcome"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_endpoint_publishes_total",
			Help: "Device publishes by outcome (accepted, refused, sink_unavailable, sink_rejected, dropped).",
		}, []string{"outcome"}),
		connections: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mqtt_endpoint_connections",
			Help: "Open authenticated device connections.",
		}, connected),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_endpoint_commands_total",
			Help: "Commands by outcome (delivered, unreachable, not_acknowledged, too_large, refused_by_device).",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.connects, m.publishes, m.connections, m.commands)
	}
	return m
}

func (m *metrics) connect(outcome string) { m.connects.WithLabelValues(outcome).Inc() }

func (m *metrics) command(outcome string) { m.commands.WithLabelValues(outcome).Inc() }

func (m *metrics) publish(outcome string) { m.publishes.WithLabelValues(outcome).Inc() }

// publishResult counts the sink's answer to a QoS 1 publish.
func (m *metrics) publishResult(err error) {
	switch {
	case err == nil:
		m.publish("accepted")
	case errors.Is(err, source.ErrSinkRejected):
		m.publish("sink_rejected")
	default:
		m.publish("sink_unavailable")
	}
}
