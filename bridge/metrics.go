package bridge

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/sink"
	"mqtt-endpoint/source"
)

// metrics counts what the bridge does.
type metrics struct {
	connects        *prometheus.CounterVec
	publishes       *prometheus.CounterVec
	connections     *prometheus.GaugeVec
	commands        *prometheus.CounterVec
	commandDuration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_endpoint_connects_total",
			Help: "Connection attempts by outcome (accepted, bad_credentials, disabled, clean_start_required, shutting_down).",
		}, []string{"outcome"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_endpoint_publishes_total",
			Help: "Device publishes by outcome (accepted, refused, sink_unavailable, sink_rejected, quota_exceeded, dropped, event_lost).",
		}, []string{"outcome"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mqtt_endpoint_connections",
			Help: "Open authenticated device connections by listener and application.",
		}, []string{"listener", "application"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_endpoint_commands_total",
			Help: "Commands by outcome (delivered, unknown_target, unreachable, not_acknowledged, too_large, refused_by_device).",
		}, []string{"outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mqtt_endpoint_command_duration_seconds",
			Help:    "Time from a command's arrival to its delivery (QoS 1: the device's PUBACK), by outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.connects, m.publishes, m.connections, m.commands, m.commandDuration)
	}
	return m
}

// refused counts a refused connect by the reason of SPEC §5.
func (m *metrics) refused(err error) {
	outcome := "bad_credentials"
	switch {
	case errors.Is(err, auth.ErrDisabled):
		outcome = "disabled"
	case errors.Is(err, errCleanStartRequired):
		outcome = "clean_start_required"
	case errors.Is(err, errShuttingDown):
		outcome = "shutting_down"
	}
	m.connects.WithLabelValues(outcome).Inc()
}

func (m *metrics) publish(outcome string) { m.publishes.WithLabelValues(outcome).Inc() }

// publishResult counts the sink's answer to a QoS 1 publish.
func (m *metrics) publishResult(err error) {
	switch {
	case err == nil:
		m.publish("accepted")
	case errors.Is(err, source.ErrSinkRejected):
		m.publish("sink_rejected")
	case errors.Is(err, source.ErrQueueFull):
		m.publish("quota_exceeded")
	default:
		m.publish("sink_unavailable")
	}
}

// command counts a command's outcome and how long it took.
func (m *metrics) command(err error, start time.Time) {
	outcome := "delivered"
	switch {
	case err == nil:
	case errors.Is(err, sink.ErrUnknownTarget):
		outcome = "unknown_target"
	case errors.Is(err, sink.ErrNotAcknowledged):
		outcome = "not_acknowledged"
	case errors.Is(err, sink.ErrTooLarge):
		outcome = "too_large"
	case errors.Is(err, sink.ErrRefused):
		outcome = "refused_by_device"
	default:
		outcome = "unreachable"
	}
	m.commands.WithLabelValues(outcome).Inc()
	m.commandDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}
