package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rickb777/date/period"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	eventingconfig "knative.dev/eventing/pkg/apis/config"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingv1beta3 "knative.dev/eventing/pkg/apis/eventing/v1beta3"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	sigsyaml "sigs.k8s.io/yaml"

	registrypkg "mqtt-endpoint/bridge/registry"
	sinkpkg "mqtt-endpoint/sink"
	sourcepkg "mqtt-endpoint/source"
)

// Manifest validation without a cluster (SPEC §8, reference/knative.md §3.4). config/ is read the
// way `ko resolve -f config/` reads it, every document is decoded strictly into its typed
// Kubernetes or Knative struct, Knative objects are defaulted and validated by eventing's own
// code (with eventing's feature flags and default Broker config in the context), and then the
// objects are checked against each other and against the endpoint's code: selectors, ports,
// probes, environment, the registry Secret, SinkBinding subject and sink, Trigger broker,
// subscriber, filter and delivery, EventTypes, and that every ko:// path is a main package.
// TestManifestMutations proves that each check fires.

// mfConfigDir is config/, relative to this package.
const mfConfigDir = "../config"

// mfEndpointPackage is the endpoint's main package, relative to the module root.
const mfEndpointPackage = "cmd/mqtt-endpoint"

// mfDrainTime is how long the endpoint may take to shut down after SIGTERM (main.go, SPEC §8).
const mfDrainTime = 20 * time.Second

// mfTLSListenerDefaults are the SPEC §3 defaults of the listeners that are on only with a
// certificate; config.go spells them through listenDefault, not as env defaults.
var mfTLSListenerDefaults = map[string]string{"MQTTS_LISTEN": ":8883", "WSS_LISTEN": ":8084"}

// mfListeners maps each listener variable to the name of the container port it must match.
var mfListeners = []struct{ env, port string }{
	{"MQTT_LISTEN", "mqtt"},
	{"MQTTS_LISTEN", "mqtts"},
	{"WS_LISTEN", "ws"},
	{"WSS_LISTEN", "wss"},
	{"HTTP_LISTEN", "http"},
}

// mfRuntimeEnv are variables the Go runtime reads, which the endpoint's config.go does not know.
var mfRuntimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "GOTRACEBACK"}

// mfSinkBindingEnv are the variables the SinkBinding injects; a manifest must not set them.
var mfSinkBindingEnv = []string{"K_SINK", "K_CE_OVERRIDES", "K_CA_CERTS"}

// mfEmittedTypes and mfAcceptedTypes are the CloudEvent types of the endpoint's code.
var (
	mfEmittedTypes  = []string{sourcepkg.TypeEvent, sourcepkg.TypeConnection}
	mfAcceptedTypes = []string{sinkpkg.TypeCommand}
	// mfEmittedExtensions must be declared by the EventType of every emitted type.
	mfEmittedExtensions = []string{sourcepkg.ExtApplication, sourcepkg.ExtDevice, sourcepkg.ExtSender, sourcepkg.ExtPartitionKey, sourcepkg.ExtInstance}
)

// mfNewlines joins multi-line messages (YAML and Knative errors) into one line.
var mfNewlines = regexp.MustCompile(`\s*\n\s*`)

// mfCEAttributeName is the CloudEvents rule for attribute names (spec §"Attribute Naming").
var mfCEAttributeName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// mfDecoders are the kinds config/ may hold, each with its typed struct. A kind that is not here
// fails the test: add its decoder (and checks) rather than let it through unvalidated.
var mfDecoders = map[schema.GroupVersionKind]func() metav1.Object{
	corev1.SchemeGroupVersion.WithKind("Namespace"):          func() metav1.Object { return &corev1.Namespace{} },
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):     func() metav1.Object { return &corev1.ServiceAccount{} },
	corev1.SchemeGroupVersion.WithKind("Secret"):             func() metav1.Object { return &corev1.Secret{} },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):          func() metav1.Object { return &corev1.ConfigMap{} },
	corev1.SchemeGroupVersion.WithKind("Service"):            func() metav1.Object { return &corev1.Service{} },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):         func() metav1.Object { return &appsv1.Deployment{} },
	eventingv1.SchemeGroupVersion.WithKind("Broker"):         func() metav1.Object { return &eventingv1.Broker{} },
	eventingv1.SchemeGroupVersion.WithKind("Trigger"):        func() metav1.Object { return &eventingv1.Trigger{} },
	sourcesv1.SchemeGroupVersion.WithKind("SinkBinding"):     func() metav1.Object { return &sourcesv1.SinkBinding{} },
	eventingv1beta3.SchemeGroupVersion.WithKind("EventType"): func() metav1.Object { return &eventingv1beta3.EventType{} },
}

// TestManifests checks the real config/.
func TestManifests(t *testing.T) {
	env := loadManifestEnv(t)
	b, problems := env.check(os.DirFS(mfConfigDir), nil)
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) == 0 {
		t.Logf("config/: %d objects valid (%s)", len(b.objects), b.summary())
	}
}

// TestManifestMutations breaks the good manifests in memory, one way per case, and expects the
// check to report that specific problem.
func TestManifestMutations(t *testing.T) {
	env := loadManifestEnv(t)
	good := mfReadFS(t, os.DirFS(mfConfigDir))
	if _, problems := env.check(good, nil); len(problems) > 0 {
		t.Fatalf("the unmutated config/ has problems (see TestManifests): %s", strings.Join(problems, "\n"))
	}

	type mutation struct {
		name string
		// text edits the files (replace fails the case when the old text is not there once).
		text func(t *testing.T, files fstest.MapFS)
		// obj edits the decoded objects, before defaults and validation.
		obj  func(t *testing.T, b *mfBundle)
		want string
	}
	cases := []mutation{
		// How ko reads config/.
		{name: "yml file is skipped by ko", text: func(t *testing.T, f fstest.MapFS) {
			f["950-extra.yml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: mqtt-endpoint}\n")}
		}, want: `950-extra.yml: ko resolve -f config/ skips it`},
		{name: "subdirectory is skipped by ko", text: func(t *testing.T, f fstest.MapFS) {
			f["extra/100-x.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")}
		}, want: `extra: ko resolve -f config/ does not read subdirectories`},
		{name: "duplicate YAML key", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "800-trigger.yaml", "  broker: default\n", "  broker: default\n  broker: other\n")
		}, want: `key "broker" already set in map`},
		{name: "unknown kind", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "900-eventtypes.yaml", "apiVersion: eventing.knative.dev/v1beta3\nkind: EventType\nmetadata:\n  name: io.drogue.command.v1",
				"apiVersion: eventing.knative.dev/v1beta9\nkind: EventType\nmetadata:\n  name: io.drogue.command.v1")
		}, want: `900-eventtypes.yaml#2: no typed decoder for eventing.knative.dev/v1beta9, Kind=EventType`},
		{name: "misspelt field (strict decoding)", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "800-trigger.yaml", "    retry: 5\n", "    retries: 5\n")
		}, want: `800-trigger.yaml#0 Trigger: strict decoding: error unmarshaling JSON: while decoding JSON: json: unknown field "retries"`},
		{name: "misspelt field in the pod template", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "500-deployment.yaml", "          readinessProbe:\n", "          readynessProbe:\n")
		}, want: `500-deployment.yaml#0 Deployment: strict decoding: error unmarshaling JSON: while decoding JSON: json: unknown field "readynessProbe"`},

		// Knative's own validation.
		{name: "Trigger filter attribute not lower case", obj: func(t *testing.T, b *mfBundle) {
			f := mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Filter
			f.Attributes = eventingv1.TriggerFilterAttributes{"Type": sinkpkg.TypeCommand}
		}, want: `invalid key name "Type": spec.filter.attributes`},
		{name: "backoffDelay not ISO 8601", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.BackoffDelay = mfPtr("1s")
		}, want: `invalid value: 1s: spec.delivery.backoffDelay`},
		{name: "relative subscriber uri without ref", obj: func(t *testing.T, b *mfBundle) {
			s := &mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Subscriber
			s.Ref, s.URI = nil, &apis.URL{Path: "/commands"}
		}, want: `Relative URI is not allowed when Ref and [apiVersion, kind, name] is absent: spec.subscriber.uri`},
		{name: "SinkBinding without subject", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*sourcesv1.SinkBinding](t, b, "mqtt-endpoint").Spec.Subject = sourcesv1.SinkBinding{}.Spec.Subject
		}, want: `missing field(s): spec.subject.apiVersion, spec.subject.kind`},
		{name: "feature-gated field (retryAfterMax, delivery-retryafter is disabled)", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.RetryAfterMax = mfPtr("PT30S")
		}, want: `Knative validation: must not set the field(s): spec.delivery.retryAfterMax`},
		{name: "version eventing does not serve", obj: func(t *testing.T, b *mfBundle) {
			for _, o := range b.objects {
				if o.gvk.Kind == "EventType" {
					o.gvk.Version = "v1alpha1"
				}
			}
		}, want: `EventType io.drogue.event.v1: eventing.knative.dev/v1alpha1 is not served by eventing's CRD (served: [v1beta3 v1beta2 v1beta1])`},
		{name: "EventType without the id attribute", obj: func(t *testing.T, b *mfBundle) {
			et := mfFind[*eventingv1beta3.EventType](t, b, sinkpkg.TypeCommand)
			et.Spec.Attributes = slices.DeleteFunc(et.Spec.Attributes, func(a eventingv1beta3.EventAttributeDefinition) bool { return a.Name == "id" })
		}, want: `missing field(s): spec.attributes.id`},

		// Kubernetes object rules.
		{name: "object outside the namespace", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Secret](t, b, "mqtt-endpoint-registry").Namespace = ""
		}, want: `Secret mqtt-endpoint-registry: namespace "" is not the Namespace of config/ ("mqtt-endpoint")`},
		{name: "duplicate object", text: func(t *testing.T, f fstest.MapFS) {
			f["950-dup.yaml"] = &fstest.MapFile{Data: f["200-serviceaccount.yaml"].Data}
		}, want: `950-dup.yaml#0 ServiceAccount mqtt-endpoint: also defined in 200-serviceaccount.yaml#0`},
		{name: "invalid Service name", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-mqtt").Name = "mqtt.endpoint"
		}, want: `name "mqtt.endpoint": a DNS-1035 label must consist of`},
		{name: "invalid label value", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Labels["app.kubernetes.io/name"] = "mqtt endpoint"
		}, want: `label app.kubernetes.io/name="mqtt endpoint": a valid label must be`},

		// The Deployment.
		{name: "selector does not match the pod labels", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "other"
		}, want: `spec.selector app.kubernetes.io/name=other does not match the pod template labels`},
		{name: "two replicas", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Replicas = mfPtr[int32](2)
		}, want: `replicas must be 1 (one MQTT server;`},
		{name: "rolling update", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
		}, want: `strategy must be Recreate`},
		{name: "termination grace period shorter than the drain", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Template.Spec.TerminationGracePeriodSeconds = mfPtr[int64](15)
		}, want: `terminationGracePeriodSeconds 15 does not leave the endpoint its 20s to drain`},
		{name: "unknown ServiceAccount", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Template.Spec.ServiceAccountName = "nobody"
		}, want: `serviceAccountName "nobody": no ServiceAccount of that name in config/`},
		{name: "writable root filesystem", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).SecurityContext.ReadOnlyRootFilesystem = nil
		}, want: `container mqtt-endpoint: securityContext.readOnlyRootFilesystem must be true`},
		{name: "privilege escalation allowed", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).SecurityContext.AllowPrivilegeEscalation = mfPtr(true)
		}, want: `container mqtt-endpoint: securityContext.allowPrivilegeEscalation must be false`},
		{name: "capabilities kept", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).SecurityContext.Capabilities.Drop = nil
		}, want: `container mqtt-endpoint: securityContext.capabilities.drop must contain ALL`},
		{name: "may run as root", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).SecurityContext.RunAsNonRoot = nil
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
		}, want: `container mqtt-endpoint: runAsNonRoot must be true`},
		{name: "no seccomp profile", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).SecurityContext.SeccompProfile = nil
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Template.Spec.SecurityContext.SeccompProfile = nil
		}, want: `container mqtt-endpoint: seccompProfile must be RuntimeDefault or Localhost`},
		{name: "registry mounted with subPath", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).VolumeMounts[0].SubPath = "example.yaml"
		}, want: `volumeMount registry: subPath "example.yaml" stops Secret and ConfigMap updates from reaching the pod`},
		{name: "defaultMode written in decimal", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint").Spec.Template.Spec.Volumes[0].Secret.DefaultMode = mfPtr[int32](400)
		}, want: `volume registry: defaultMode 0620: the non-root container could not read the files`},
		{name: "mount of an unknown volume", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).VolumeMounts[0].Name = "registri"
		}, want: `volumeMount registri: no such volume`},
		{name: "volume of a missing Secret", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Secret](t, b, "mqtt-endpoint-registry").Name = "other"
		}, want: `volume registry: Secret "mqtt-endpoint-registry" is not in config/`},
		{name: "misspelt environment variable", obj: func(t *testing.T, b *mfBundle) {
			mfEnvOf(t, b, "LOG_LEVEL").Name = "LOGLEVEL"
		}, want: `env LOGLEVEL: the endpoint does not read it`},
		{name: "K_SINK set by hand", obj: func(t *testing.T, b *mfBundle) {
			c := mfEndpointContainer(t, b)
			c.Env = append(c.Env, corev1.EnvVar{Name: "K_SINK", Value: "http://example.com"})
		}, want: `env K_SINK: the SinkBinding sets it`},
		{name: "NAMESPACE not from the downward API", obj: func(t *testing.T, b *mfBundle) {
			*mfEnvOf(t, b, "NAMESPACE") = corev1.EnvVar{Name: "NAMESPACE", Value: "mqtt-endpoint"}
		}, want: `env NAMESPACE: must come from fieldRef metadata.namespace`},
		{name: "no REGISTRY_PATH", obj: func(t *testing.T, b *mfBundle) {
			c := mfEndpointContainer(t, b)
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "REGISTRY_PATH" })
		}, want: `env REGISTRY_PATH: not set (the endpoint needs a registry outside --dev)`},
		{name: "REGISTRY_PATH outside the mounted Secret", obj: func(t *testing.T, b *mfBundle) {
			mfEnvOf(t, b, "REGISTRY_PATH").Value = "/etc/registry"
		}, want: `env REGISTRY_PATH=/etc/registry: not inside a mounted Secret or ConfigMap`},
		{name: "broken registry", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "300-registry.yaml", "        disabled: true", "        disabled: true\n        enabled: false")
		}, want: `registry in Secret mqtt-endpoint-registry (REGISTRY_PATH=/etc/mqtt-endpoint/registry): load registry`},
		{name: "registry key the endpoint skips", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "300-registry.yaml", "  example.yaml: |", "  example.txt: |")
		}, want: `Secret mqtt-endpoint-registry key "example.txt": the endpoint reads only *.yaml and *.yml keys`},
		{name: "container port does not match the listener", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).Ports[0].ContainerPort = 1884
		}, want: `port mqtt is 1884, but MQTT_LISTEN listens on :1883`},
		{name: "listener moved without its port", obj: func(t *testing.T, b *mfBundle) {
			c := mfEndpointContainer(t, b)
			c.Env = append(c.Env, corev1.EnvVar{Name: "HTTP_LISTEN", Value: ":9090"})
		}, want: `port http is 8080, but HTTP_LISTEN listens on :9090`},
		{name: "listener without a port", obj: func(t *testing.T, b *mfBundle) {
			c := mfEndpointContainer(t, b)
			c.Ports = slices.DeleteFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "ws" })
		}, want: `no container port named ws for WS_LISTEN (:8083)`},
		{name: "readiness probe on the wrong path", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).ReadinessProbe.HTTPGet.Path = "/ready"
		}, want: `readinessProbe: GET /ready, want /readyz`},
		{name: "liveness probe on the wrong port", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).LivenessProbe.HTTPGet.Port = intstr.FromString("mqtt")
		}, want: `livenessProbe: port "mqtt" is not HTTP_LISTEN (8080)`},
		{name: "no liveness probe", obj: func(t *testing.T, b *mfBundle) {
			mfEndpointContainer(t, b).LivenessProbe = nil
		}, want: `livenessProbe: missing`},
		{name: "no memory limit", obj: func(t *testing.T, b *mfBundle) {
			delete(mfEndpointContainer(t, b).Resources.Limits, corev1.ResourceMemory)
		}, want: `resources.limits.memory: missing`},
		{name: "ko:// path that is not a main package", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "500-deployment.yaml", "ko://mqtt-endpoint/cmd/mqtt-endpoint", "ko://mqtt-endpoint/source")
		}, want: `ko://mqtt-endpoint/source: package source is not a main package`},
		{name: "ko:// path that does not exist", text: func(t *testing.T, f fstest.MapFS) {
			mfReplace(t, f, "500-deployment.yaml", "ko://mqtt-endpoint/cmd/mqtt-endpoint", "ko://mqtt-endpoint/cmd/mqtt-endpoin")
		}, want: `ko://mqtt-endpoint/cmd/mqtt-endpoin: not a package of the module`},

		// Services.
		{name: "Service selecting no pods", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-mqtt").Spec.Selector["app.kubernetes.io/name"] = "mqtt"
		}, want: `Service mqtt-endpoint-mqtt: selector app.kubernetes.io/name=mqtt selects the pods of no Deployment in config/`},
		{name: "targetPort name typo", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-commands").Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}, want: `port http: targetPort "htp" is not a port of Deployment mqtt-endpoint`},
		{name: "targetPort number not exposed", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-mqtt").Spec.Ports[0].TargetPort = intstr.FromInt32(1884)
		}, want: `port mqtt: targetPort 1884 is not a port of Deployment mqtt-endpoint`},
		{name: "MQTT Service not a LoadBalancer", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-mqtt").Spec.Type = corev1.ServiceTypeClusterIP
		}, want: `Service mqtt-endpoint-mqtt: exposes the MQTT port to devices, so it must be a LoadBalancer`},
		{name: "HTTP port exposed outside the cluster", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-commands").Spec.Type = corev1.ServiceTypeLoadBalancer
		}, want: `Service mqtt-endpoint-commands: exposes HTTP_LISTEN (commands, metrics) outside the cluster`},

		// SinkBinding.
		{name: "SinkBinding subject is another Deployment", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*sourcesv1.SinkBinding](t, b, "mqtt-endpoint").Spec.Subject.Name = "mqtt"
		}, want: `spec.subject: no apps/v1 Deployment "mqtt" in config/`},
		{name: "SinkBinding sink is not in config", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*sourcesv1.SinkBinding](t, b, "mqtt-endpoint").Spec.Sink.Ref.Name = "other"
		}, want: `spec.sink: no eventing.knative.dev/v1 Broker "other" in config/`},

		// Trigger.
		{name: "Trigger on a Broker that is not in config", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Broker = "defualt"
		}, want: `spec.broker: no Broker "defualt" in config/`},
		{name: "Trigger subscriber is not in config", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Subscriber.Ref.Name = "mqtt-endpoint-command"
		}, want: `spec.subscriber: no v1 Service "mqtt-endpoint-command" in config/`},
		{name: "commands Service not on port 80", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-commands").Spec.Ports[0].Port = 8080
		}, want: `spec.subscriber: Service mqtt-endpoint-commands has no port 80 (Knative sends to http://<service>.<namespace>.svc.cluster.local)`},
		{name: "commands Service port 80 to the MQTT port", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*corev1.Service](t, b, "mqtt-endpoint-commands").Spec.Ports[0].TargetPort = intstr.FromString("mqtt")
		}, want: `spec.subscriber: Service mqtt-endpoint-commands port 80 goes to the endpoint's port 1883, not to HTTP_LISTEN (8080)`},
		{name: "subscriber uri with a path the sink does not serve", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Subscriber.URI = &apis.URL{Path: "/commands"}
		}, want: `spec.subscriber.uri "/commands": the endpoint takes commands at POST /`},
		{name: "Trigger filter on a type the sink does not accept", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Filter.Attributes["type"] = sourcepkg.TypeEvent
		}, want: `spec.filter: type "io.drogue.event.v1" is not accepted by the endpoint's sink ([io.drogue.command.v1])`},
		{name: "Trigger without a type filter", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Filter = nil
		}, want: `spec.filter: no exact type filter: the endpoint would get every event of the Broker`},
		{name: "no Trigger for commands", obj: func(t *testing.T, b *mfBundle) {
			b.objects = slices.DeleteFunc(b.objects, func(o *mfObject) bool { return o.gvk.Kind == "Trigger" })
		}, want: `no Trigger delivers io.drogue.command.v1 to the endpoint's command sink`},
		{name: "Trigger without a dead-letter sink", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.DeadLetterSink = nil
		}, want: `spec.delivery.deadLetterSink: missing: undeliverable commands would be lost without a trace`},
		{name: "dead letters back into the same Broker", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.DeadLetterSink.Ref.Name = "default"
		}, want: `spec.delivery.deadLetterSink: the Trigger's own Broker "default": dead letters would match the Trigger again`},
		{name: "dead-letter sink not in config", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.DeadLetterSink.Ref.Name = "dead-letters"
		}, want: `spec.delivery.deadLetterSink: no eventing.knative.dev/v1 Broker "dead-letters" in config/`},
		{name: "no retries", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.Retry = nil
		}, want: `spec.delivery.retry: missing: a 503 (device offline) would go straight to the dead letters`},
		{name: "delivery timeout shorter than the command ack timeout", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1.Trigger](t, b, "mqtt-endpoint-commands").Spec.Delivery.Timeout = mfPtr("PT3S")
		}, want: `spec.delivery.timeout PT3S: not longer than COMMAND_ACK_TIMEOUT (5s)`},

		// EventTypes.
		{name: "emitted type without an EventType", obj: func(t *testing.T, b *mfBundle) {
			b.objects = slices.DeleteFunc(b.objects, func(o *mfObject) bool { return o.obj.GetName() == sourcepkg.TypeConnection })
		}, want: `no EventType declares io.drogue.connection.v1 (emitted)`},
		{name: "EventType for a type the endpoint does not know", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1beta3.EventType](t, b, sourcepkg.TypeConnection).Spec.Attributes[1].Value = "io.drogue.connected.v1"
		}, want: `type "io.drogue.connected.v1" is neither emitted nor accepted by the endpoint`},
		{name: "EventType attribute name not a CloudEvents name", obj: func(t *testing.T, b *mfBundle) {
			et := mfFind[*eventingv1beta3.EventType](t, b, sourcepkg.TypeEvent)
			et.Spec.Attributes = append(et.Spec.Attributes, eventingv1beta3.EventAttributeDefinition{Name: "partition_key"})
		}, want: `attribute "partition_key": CloudEvents attribute names are 1-20 lower-case letters and digits`},
		{name: "EventType of an emitted type without an extension", obj: func(t *testing.T, b *mfBundle) {
			et := mfFind[*eventingv1beta3.EventType](t, b, sourcepkg.TypeEvent)
			et.Spec.Attributes = slices.DeleteFunc(et.Spec.Attributes, func(a eventingv1beta3.EventAttributeDefinition) bool { return a.Name == sourcepkg.ExtSender })
		}, want: `EventType io.drogue.event.v1: no attribute sender, an extension the endpoint sets on every event`},
		{name: "EventType reference not in config", obj: func(t *testing.T, b *mfBundle) {
			mfFind[*eventingv1beta3.EventType](t, b, sinkpkg.TypeCommand).Spec.Reference.Name = "other"
		}, want: `spec.reference: no eventing.knative.dev/v1 Broker "other" in config/`},
	}

	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			files := mfCloneFS(good)
			if c.text != nil {
				c.text(t, files)
			}
			var mutate func(*mfBundle)
			if c.obj != nil {
				mutate = func(b *mfBundle) { c.obj(t, b) }
			}
			_, problems := env.check(files, mutate)
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("want a problem containing\n\t%s\ngot %d:\n\t%s", c.want, len(problems), strings.Join(problems, "\n\t"))
		})
	}
}

// ---------------------------------------------------------------------------------------------
// Reading config/ as ko does.

// mfDocument is one YAML document of a file in config/.
type mfDocument struct {
	file  string   // path inside config/
	index int      // 0-based position in the file
	body  []byte   // the document as ko writes it out (yaml.v3, indent 2)
	koRef []string // the ko:// strings in it
}

func (d mfDocument) String() string { return fmt.Sprintf("%s#%d", d.file, d.index) }

// mfReadManifests enumerates fsys like ko's `-f <dir>` (options.EnumerateFiles: the directory's own
// files in lexical order, only *.yaml and *.json, no subdirectories without -R) and splits each
// file into documents with the decoder ko uses (gopkg.in/yaml.v3), re-encoding them as ko does.
// What ko would silently skip is a problem: it would never reach the cluster.
func mfReadManifests(fsys fs.FS) ([]mfDocument, []string) {
	var docs []mfDocument
	var problems []string
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, []string{err.Error()}
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			problems = append(problems, fmt.Sprintf("%s: ko resolve -f config/ does not read subdirectories (no -R)", name))
			continue
		}
		switch ext := path.Ext(name); ext {
		case ".yaml", ".json":
		default:
			if l := strings.ToLower(ext); l == ".yml" || l == ".yaml" || l == ".json" {
				problems = append(problems, fmt.Sprintf("%s: ko resolve -f config/ skips it (only *.yaml and *.json)", name))
			}
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", name, err))
				break
			}
			if len(node.Content) == 0 || node.Content[0].Tag == "!!null" {
				continue // an empty document: kubectl skips it too
			}
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(&node); err != nil {
				problems = append(problems, fmt.Sprintf("%s#%d: %v", name, i, err))
				continue
			}
			docs = append(docs, mfDocument{file: name, index: i, body: buf.Bytes(), koRef: mfKoRefsOf(&node)})
		}
	}
	return docs, problems
}

// mfKoRefsOf returns the ko:// strings anywhere in a document (ko resolves them in any string).
func mfKoRefsOf(n *yaml.Node) []string {
	var refs []string
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.HasPrefix(n.Value, "ko://") {
		refs = append(refs, n.Value)
	}
	for _, c := range n.Content {
		refs = append(refs, mfKoRefsOf(c)...)
	}
	return refs
}

// ---------------------------------------------------------------------------------------------
// Decoding into typed objects.

// mfObject is one decoded document.
type mfObject struct {
	doc mfDocument
	gvk schema.GroupVersionKind
	obj metav1.Object // *corev1.Service, *eventingv1.Trigger, ...
}

func (o *mfObject) String() string {
	return fmt.Sprintf("%s %s %s", o.doc, o.gvk.Kind, o.obj.GetName())
}

// mfBundle is all objects of config/.
type mfBundle struct {
	objects []*mfObject
	koRefs  map[string][]mfDocument // ko:// reference → documents using it
}

func (b *mfBundle) summary() string {
	n := map[string]int{}
	var kinds []string
	for _, o := range b.objects {
		if n[o.gvk.Kind] == 0 {
			kinds = append(kinds, o.gvk.Kind)
		}
		n[o.gvk.Kind]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

// mfDecode decodes every document strictly (unknown and duplicate fields are errors, as with
// kubectl --validate=strict) into the struct of its apiVersion and kind.
func mfDecode(docs []mfDocument) (*mfBundle, []string) {
	b := &mfBundle{koRefs: map[string][]mfDocument{}}
	var problems []string
	for _, d := range docs {
		for _, r := range d.koRef {
			b.koRefs[r] = append(b.koRefs[r], d)
		}
		var tm metav1.TypeMeta
		if err := sigsyaml.Unmarshal(d.body, &tm); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", d, err))
			continue
		}
		gv, err := schema.ParseGroupVersion(tm.APIVersion)
		if err != nil || tm.Kind == "" {
			problems = append(problems, fmt.Sprintf("%s: apiVersion %q, kind %q: not a Kubernetes object", d, tm.APIVersion, tm.Kind))
			continue
		}
		gvk := gv.WithKind(tm.Kind)
		newObj, ok := mfDecoders[gvk]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no typed decoder for %s: add it to decoders in tests/manifests_test.go", d, gvk))
			continue
		}
		obj := newObj()
		if err := sigsyaml.UnmarshalStrict(d.body, obj); err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: strict decoding: %v", d, tm.Kind, err))
			continue
		}
		b.objects = append(b.objects, &mfObject{doc: d, gvk: gvk, obj: obj})
	}
	return b, problems
}

// ---------------------------------------------------------------------------------------------
// The environment the checks need: Knative's context, the served CRD versions, the endpoint's
// configuration variables and the module's packages.

type manifestEnv struct {
	ctx        context.Context
	served     map[schema.GroupKind][]string // Knative CRDs of eventing: served versions
	envs       map[string]string             // variables config.go reads → their default ("" if none)
	modulePath string

	mu       sync.Mutex
	packages map[string]string // import path → package name, or "" when it is not a package
}

var (
	mfEnvOnce   sync.Once
	mfSharedEnv *manifestEnv
	mfEnvErr    error
)

func loadManifestEnv(t *testing.T) *manifestEnv {
	t.Helper()
	mfEnvOnce.Do(func() { mfSharedEnv, mfEnvErr = newManifestEnv() })
	if mfEnvErr != nil {
		t.Fatal(mfEnvErr)
	}
	return mfSharedEnv
}

func newManifestEnv() (*manifestEnv, error) {
	e := &manifestEnv{packages: map[string]string{}}
	out, err := mfGo("list", "-m")
	if err != nil {
		return nil, err
	}
	e.modulePath = strings.TrimSpace(out)

	// Eventing's own configuration, from the module the tests build against.
	dir, err := mfGo("list", "-m", "-f", "{{.Dir}}", "knative.dev/eventing")
	if err != nil {
		return nil, err
	}
	dir = strings.TrimSpace(dir)
	features, err := mfReadConfigMap(filepath.Join(dir, "config/core/configmaps/features.yaml"))
	if err != nil {
		return nil, err
	}
	flags, err := feature.NewFlagsConfigFromConfigMap(features)
	if err != nil {
		return nil, fmt.Errorf("eventing features.yaml: %w", err)
	}
	brDefaults, err := mfReadConfigMap(filepath.Join(dir, "config/core/configmaps/default-broker.yaml"))
	if err != nil {
		return nil, err
	}
	defaults, err := eventingconfig.NewDefaultsConfigFromConfigMap(brDefaults)
	if err != nil {
		return nil, fmt.Errorf("eventing default-broker.yaml: %w", err)
	}
	ctx := feature.ToContext(context.Background(), flags)
	e.ctx = eventingconfig.ToContext(ctx, &eventingconfig.Config{Defaults: defaults})

	if e.served, err = mfServedVersions(filepath.Join(dir, "config/core/resources")); err != nil {
		return nil, err
	}
	if e.envs, err = mfScanEnv(filepath.Join("..", mfEndpointPackage)); err != nil {
		return nil, err
	}
	return e, nil
}

func mfGo(args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}

func mfReadConfigMap(file string) (*corev1.ConfigMap, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := sigsyaml.Unmarshal(data, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &cm, nil
}

// mfServedVersions reads eventing's CRDs: which versions of each kind the API server serves.
func mfServedVersions(dir string) (map[schema.GroupKind][]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s: %v", dir, err)
	}
	served := map[schema.GroupKind][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var crd struct {
				Kind string `yaml:"kind"`
				Spec struct {
					Group string `yaml:"group"`
					Names struct {
						Kind string `yaml:"kind"`
					} `yaml:"names"`
					Versions []struct {
						Name   string `yaml:"name"`
						Served bool   `yaml:"served"`
					} `yaml:"versions"`
				} `yaml:"spec"`
			}
			if err := dec.Decode(&crd); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				continue
			}
			gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
			for _, v := range crd.Spec.Versions {
				if v.Served {
					served[gk] = append(served[gk], v.Name)
				}
			}
		}
	}
	return served, nil
}

// mfScanEnv finds the environment variables the endpoint reads, and their defaults, in its
// main package: the string literals passed to env(name, default), getenv(name) and
// os.Getenv(name).
func mfScanEnv(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	envs := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name != "env" && fn.Name != "getenv" {
					return true
				}
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); !ok || x.Name != "os" || fn.Sel.Name != "Getenv" {
					return true
				}
			default:
				return true
			}
			name, ok := mfStringLit(call.Args[0])
			if !ok {
				return true
			}
			def := ""
			if len(call.Args) > 1 {
				def, _ = mfStringLit(call.Args[1])
			}
			envs[name] = def
			return true
		})
	}
	// A sanity check that the scan still understands config.go.
	for _, want := range []string{"REGISTRY_PATH", "HTTP_LISTEN", "K_SINK", "NAMESPACE"} {
		if _, ok := envs[want]; !ok {
			return nil, fmt.Errorf("%s: found no env(%q, ...) or getenv(%q) call; the manifest test reads the endpoint's variables from there: adapt mfScanEnv", dir, want, want)
		}
	}
	return envs, nil
}

func mfStringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// packageName returns the name of the package at importPath, or "" when there is none.
func (e *manifestEnv) packageName(importPath string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n, ok := e.packages[importPath]; ok {
		return n, nil
	}
	out, err := mfGo("list", "-e", "-f", "{{if not .Error}}{{.Name}}{{end}}", importPath)
	if err != nil {
		return "", err
	}
	n := strings.TrimSpace(out)
	e.packages[importPath] = n
	return n, nil
}

// ---------------------------------------------------------------------------------------------
// The checks.

// check runs the whole pipeline over fsys; mutate, when set, edits the decoded objects first.
func (e *manifestEnv) check(fsys fs.FS, mutate func(*mfBundle)) (*mfBundle, []string) {
	docs, problems := mfReadManifests(fsys)
	b, p := mfDecode(docs)
	problems = append(problems, p...)
	if mutate != nil {
		mutate(b)
	}
	c := &mfChecker{env: e, b: b}
	c.run()
	problems = append(problems, c.problems...)
	for i, p := range problems { // one line each
		problems[i] = mfNewlines.ReplaceAllString(p, " ")
	}
	return b, problems
}

type mfChecker struct {
	env      *manifestEnv
	b        *mfBundle
	problems []string

	namespace string
	endpoint  *mfEndpoint // the Deployment running the endpoint, when there is one
}

// mfEndpoint is the Deployment and container running cmd/mqtt-endpoint, with its effective
// configuration.
type mfEndpoint struct {
	o          *mfObject
	deployment *appsv1.Deployment
	container  *corev1.Container
	httpPort   int32
	ackTimeout time.Duration
}

func (c *mfChecker) addf(o *mfObject, format string, args ...any) {
	prefix := "config/: "
	if o != nil {
		prefix = o.String() + ": "
	}
	c.problems = append(c.problems, prefix+fmt.Sprintf(format, args...))
}

func (c *mfChecker) run() {
	c.objects()
	c.knative()
	c.koReferences()
	c.endpointChecks()
	for _, o := range c.b.objects {
		switch obj := o.obj.(type) {
		case *appsv1.Deployment:
			c.deployment(o, obj)
		case *corev1.Service:
			c.service(o, obj)
		case *sourcesv1.SinkBinding:
			c.sinkBinding(o, obj)
		case *eventingv1.Trigger:
			c.trigger(o, obj)
		case *eventingv1beta3.EventType:
			c.eventType(o, obj)
		}
	}
	c.coverage()
}

// objects: one Namespace holding everything, unique valid names, valid labels.
func (c *mfChecker) objects() {
	var nss []*mfObject
	for _, o := range c.b.objects {
		if o.gvk.Kind == "Namespace" {
			nss = append(nss, o)
		}
	}
	if len(nss) != 1 {
		c.addf(nil, "want exactly one Namespace, have %d", len(nss))
	} else {
		c.namespace = nss[0].obj.GetName()
	}
	seen := map[string]*mfObject{}
	for _, o := range c.b.objects {
		m := o.obj
		key := fmt.Sprintf("%s/%s/%s/%s", o.gvk.Group, o.gvk.Kind, m.GetNamespace(), m.GetName())
		if first, ok := seen[key]; ok {
			c.addf(o, "also defined in %s", first.doc)
		}
		seen[key] = o
		var nameErrs []string
		switch o.gvk.Kind {
		case "Namespace":
			nameErrs = validation.IsDNS1123Label(m.GetName())
		case "Service":
			nameErrs = validation.IsDNS1035Label(m.GetName())
		default:
			nameErrs = validation.IsDNS1123Subdomain(m.GetName())
		}
		for _, msg := range nameErrs {
			c.addf(o, "name %q: %s", m.GetName(), msg)
		}
		if o.gvk.Kind == "Namespace" {
			if m.GetNamespace() != "" {
				c.addf(o, "a Namespace has no namespace")
			}
		} else if c.namespace != "" && m.GetNamespace() != c.namespace {
			// Without one, kubectl would put the object into the namespace of its context.
			c.addf(o, "namespace %q is not the Namespace of config/ (%q)", m.GetNamespace(), c.namespace)
		}
		c.labels(o, m.GetLabels(), "label")
		c.labels(o, m.GetAnnotations(), "annotation")
		if d, ok := o.obj.(*appsv1.Deployment); ok {
			c.labels(o, d.Spec.Template.Labels, "pod template label")
		}
	}
}

func (c *mfChecker) labels(o *mfObject, m map[string]string, what string) {
	for k, v := range m {
		for _, msg := range validation.IsQualifiedName(k) {
			c.addf(o, "%s %s: %s", what, k, msg)
		}
		if strings.Contains(what, "label") {
			for _, msg := range validation.IsValidLabelValue(v) {
				c.addf(o, "%s %s=%q: %s", what, k, v, msg)
			}
		}
	}
}

// knative defaults and validates every Knative object with eventing's code, as its admission
// webhook does on create, and checks that eventing v0.46.0 serves the object's version.
func (c *mfChecker) knative() {
	ctx := apis.WithinCreate(c.env.ctx)
	for _, o := range c.b.objects {
		if !strings.HasSuffix(o.gvk.Group, "knative.dev") {
			continue
		}
		if !slices.Contains(c.env.served[o.gvk.GroupKind()], o.gvk.Version) {
			c.addf(o, "%s is not served by eventing's CRD (served: %v)", o.gvk.GroupVersion(), c.env.served[o.gvk.GroupKind()])
		}
		if d, ok := o.obj.(apis.Defaultable); ok {
			d.SetDefaults(ctx)
		} else {
			c.addf(o, "%T has no SetDefaults", o.obj)
		}
		v, ok := o.obj.(apis.Validatable)
		if !ok {
			c.addf(o, "%T has no Validate", o.obj)
			continue
		}
		if err := v.Validate(ctx); err != nil {
			c.addf(o, "Knative validation: %s", err.Error())
		}
	}
}

// koReferences: every ko:// path is a main package of this module (ko fails otherwise, or worse,
// with an import path outside the module, builds something else).
func (c *mfChecker) koReferences() {
	refs := make([]string, 0, len(c.b.koRefs))
	for r := range c.b.koRefs {
		refs = append(refs, r)
	}
	slices.Sort(refs)
	for _, r := range refs {
		where := c.b.koRefs[r][0].String()
		ip := strings.TrimPrefix(r, "ko://")
		if ip != c.env.modulePath && !strings.HasPrefix(ip, c.env.modulePath+"/") {
			c.problems = append(c.problems, fmt.Sprintf("%s: %s: not in module %s", where, r, c.env.modulePath))
			continue
		}
		name, err := c.env.packageName(ip)
		switch {
		case err != nil:
			c.problems = append(c.problems, fmt.Sprintf("%s: %s: %v", where, r, err))
		case name == "":
			c.problems = append(c.problems, fmt.Sprintf("%s: %s: not a package of the module", where, r))
		case name != "main":
			c.problems = append(c.problems, fmt.Sprintf("%s: %s: package %s is not a main package", where, r, name))
		}
	}
}

// endpointChecks finds the endpoint's container and checks its configuration against config.go.
func (c *mfChecker) endpointChecks() {
	image := "ko://" + c.env.modulePath + "/" + mfEndpointPackage
	for _, o := range c.b.objects {
		d, ok := o.obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		for i := range d.Spec.Template.Spec.Containers {
			if d.Spec.Template.Spec.Containers[i].Image == image {
				c.endpoint = &mfEndpoint{o: o, deployment: d, container: &d.Spec.Template.Spec.Containers[i]}
			}
		}
	}
	ep := c.endpoint
	if ep == nil {
		c.addf(nil, "no Deployment runs %s", image)
		return
	}
	o, ct := ep.o, ep.container
	cprefix := "container " + ct.Name + ": "

	// Environment.
	values := map[string]string{}
	seen := map[string]bool{}
	for i := range ct.Env {
		ev := &ct.Env[i]
		if seen[ev.Name] {
			c.addf(o, "%senv %s: set twice", cprefix, ev.Name)
		}
		seen[ev.Name] = true
		_, known := c.env.envs[ev.Name]
		switch {
		case slices.Contains(mfSinkBindingEnv, ev.Name):
			c.addf(o, "%senv %s: the SinkBinding sets it", cprefix, ev.Name)
		case !known && !slices.Contains(mfRuntimeEnv, ev.Name):
			c.addf(o, "%senv %s: the endpoint does not read it (%s)", cprefix, ev.Name, mfEndpointPackage)
		}
		if ev.ValueFrom == nil {
			values[ev.Name] = ev.Value
		}
	}
	if ns := mfEnvVar(ct, "NAMESPACE"); ns == nil || ns.ValueFrom == nil || ns.ValueFrom.FieldRef == nil || ns.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		c.addf(o, "%senv NAMESPACE: must come from fieldRef metadata.namespace", cprefix)
	}
	if ev := mfEnvVar(ct, "GOMEMLIMIT"); ev != nil && ev.ValueFrom != nil && ev.ValueFrom.ResourceFieldRef != nil && ct.Resources.Limits.Memory().IsZero() {
		c.addf(o, "%senv GOMEMLIMIT: from limits.memory, but there is no memory limit", cprefix)
	}
	effective := func(name string) string {
		if v, ok := values[name]; ok && v != "" {
			return v
		}
		if v := c.env.envs[name]; v != "" {
			return v
		}
		return mfTLSListenerDefaults[name]
	}

	// Listeners and their ports.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range ct.Ports {
		if _, dup := ports[p.Name]; dup {
			c.addf(o, "%sport %s: declared twice", cprefix, p.Name)
		}
		ports[p.Name] = p
		for _, msg := range validation.IsValidPortName(p.Name) {
			c.addf(o, "%sport %q: %s", cprefix, p.Name, msg)
		}
	}
	_, tls := values["TLS_CERT_FILE"]
	for _, l := range mfListeners {
		addr := effective(l.env)
		if addr == "off" {
			continue
		}
		_, portStr, err := net.SplitHostPort(addr)
		n, err2 := strconv.Atoi(portStr)
		if err != nil || err2 != nil {
			c.addf(o, "%s%s=%q: not a host:port", cprefix, l.env, addr)
			continue
		}
		p, ok := ports[l.port]
		switch {
		case !ok && (tls || mfTLSListenerDefaults[l.env] == ""):
			c.addf(o, "%sno container port named %s for %s (%s)", cprefix, l.port, l.env, addr)
		case ok && int(p.ContainerPort) != n:
			c.addf(o, "%sport %s is %d, but %s listens on %s", cprefix, l.port, p.ContainerPort, l.env, addr)
		}
		if l.env == "HTTP_LISTEN" {
			ep.httpPort = int32(n)
		}
	}
	if d, err := time.ParseDuration(effective("COMMAND_ACK_TIMEOUT")); err == nil {
		ep.ackTimeout = d
	} else {
		c.addf(o, "%sCOMMAND_ACK_TIMEOUT %q: %v", cprefix, effective("COMMAND_ACK_TIMEOUT"), err)
	}

	// Probes: served by HTTP_LISTEN (cmd/mqtt-endpoint/http.go, SPEC §8).
	c.probe(o, ct, "livenessProbe", ct.LivenessProbe, "/healthz", true)
	c.probe(o, ct, "readinessProbe", ct.ReadinessProbe, "/readyz", true)
	c.probe(o, ct, "startupProbe", ct.StartupProbe, "/healthz", false)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := ct.Resources.Requests[r]; !ok {
			c.addf(o, "%sresources.requests.%s: missing", cprefix, r)
		}
	}
	if _, ok := ct.Resources.Limits[corev1.ResourceMemory]; !ok {
		c.addf(o, "%sresources.limits.memory: missing", cprefix)
	}

	// The registry: REGISTRY_PATH inside a mounted Secret or ConfigMap of config/, whose content
	// the endpoint's own loader accepts.
	regPath, ok := values["REGISTRY_PATH"]
	if !ok || regPath == "" {
		c.addf(o, "%senv REGISTRY_PATH: not set (the endpoint needs a registry outside --dev)", cprefix)
		return
	}
	c.registry(o, ct, regPath)
}

func mfEnvVar(ct *corev1.Container, name string) *corev1.EnvVar {
	for i := range ct.Env {
		if ct.Env[i].Name == name {
			return &ct.Env[i]
		}
	}
	return nil
}

func (c *mfChecker) probe(o *mfObject, ct *corev1.Container, what string, p *corev1.Probe, wantPath string, required bool) {
	prefix := fmt.Sprintf("container %s: %s: ", ct.Name, what)
	if p == nil {
		if required {
			c.addf(o, "%smissing", prefix)
		}
		return
	}
	if p.HTTPGet == nil {
		c.addf(o, "%swant an httpGet on %s", prefix, wantPath)
		return
	}
	if p.HTTPGet.Path != wantPath {
		c.addf(o, "%sGET %s, want %s", prefix, p.HTTPGet.Path, wantPath)
	}
	if n, ok := mfContainerPort(ct, p.HTTPGet.Port); !ok || n != c.endpoint.httpPort {
		c.addf(o, "%sport %q is not HTTP_LISTEN (%d)", prefix, p.HTTPGet.Port.String(), c.endpoint.httpPort)
	}
}

// mfContainerPort resolves a named or numbered port of a container.
func mfContainerPort(ct *corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, p := range ct.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// registry materialises the mounted Secret or ConfigMap as the kubelet does (one file per key,
// or per item) and loads REGISTRY_PATH with the endpoint's registry package.
func (c *mfChecker) registry(o *mfObject, ct *corev1.Container, regPath string) {
	var mount *corev1.VolumeMount
	for i := range ct.VolumeMounts {
		m := &ct.VolumeMounts[i]
		if regPath == m.MountPath || strings.HasPrefix(regPath, strings.TrimSuffix(m.MountPath, "/")+"/") {
			mount = m
		}
	}
	var vol *corev1.Volume
	if mount != nil {
		vol = mfVolume(&c.endpoint.deployment.Spec.Template.Spec, mount.Name)
	}
	if vol == nil || (vol.Secret == nil && vol.ConfigMap == nil) {
		c.addf(o, "container %s: env REGISTRY_PATH=%s: not inside a mounted Secret or ConfigMap", ct.Name, regPath)
		return
	}
	var holder *mfObject
	var data map[string][]byte
	var items []corev1.KeyToPath
	if vol.Secret != nil {
		s, so := mfFindObject[*corev1.Secret](c.b, c.namespace, vol.Secret.SecretName)
		if s == nil {
			return // reported by deployment()
		}
		holder, items = so, vol.Secret.Items
		data = map[string][]byte{}
		for k, v := range s.Data {
			data[k] = v
		}
		for k, v := range s.StringData { // the API server merges stringData into data
			data[k] = []byte(v)
		}
	} else {
		cm, cmo := mfFindObject[*corev1.ConfigMap](c.b, c.namespace, vol.ConfigMap.Name)
		if cm == nil {
			return
		}
		holder, items = cmo, vol.ConfigMap.Items
		data = map[string][]byte{}
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
	}
	files := map[string][]byte{}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = v
		}
	} else {
		for _, it := range items {
			files[it.Path] = data[it.Key]
		}
	}
	var keys []string
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, msg := range validation.IsConfigMapKey(k) {
			c.addf(holder, "key %q: %s", k, msg)
		}
		if regPath == mount.MountPath && !strings.HasSuffix(k, ".yaml") && !strings.HasSuffix(k, ".yml") {
			c.addf(holder, "%s %s key %q: the endpoint reads only *.yaml and *.yml keys of REGISTRY_PATH", holder.gvk.Kind, holder.obj.GetName(), k)
		}
	}
	dir, err := os.MkdirTemp("", "mqtt-endpoint-registry-")
	if err != nil {
		c.addf(o, "%v", err)
		return
	}
	defer os.RemoveAll(dir)
	for _, k := range keys {
		f := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err == nil {
			err = os.WriteFile(f, files[k], 0o644)
		}
		if err != nil {
			c.addf(o, "%v", err)
			return
		}
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(regPath, mount.MountPath), "/")
	reg, err := registrypkg.Load(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		c.addf(holder, "registry in %s %s (REGISTRY_PATH=%s): %s", holder.gvk.Kind, holder.obj.GetName(), regPath,
			strings.ReplaceAll(strings.ReplaceAll(err.Error(), dir, mount.MountPath), "\n", "; "))
		return
	}
	if apps, _ := reg.Counts(); apps == 0 {
		c.addf(holder, "registry in %s %s (REGISTRY_PATH=%s): no applications", holder.gvk.Kind, holder.obj.GetName(), regPath)
	}
}

func mfVolume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// deployment: selector, replicas, strategy, grace period, ServiceAccount, volumes and mounts, and
// the restricted Pod Security profile (plus a read-only root filesystem).
func (c *mfChecker) deployment(o *mfObject, d *appsv1.Deployment) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	switch {
	case err != nil:
		c.addf(o, "spec.selector: %v", err)
	case sel.Empty():
		c.addf(o, "spec.selector: empty")
	case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
		c.addf(o, "spec.selector %s does not match the pod template labels %v", sel, d.Spec.Template.Labels)
	}
	if c.endpoint != nil && c.endpoint.deployment == d {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			c.addf(o, "replicas must be 1 (one MQTT server; reference/knative.md §2.1)")
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			c.addf(o, "strategy must be Recreate: a rolling update runs two MQTT servers side by side")
		}
		switch g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; {
		case g == nil:
			c.addf(o, "terminationGracePeriodSeconds: not set; the endpoint needs %s to drain", mfDrainTime)
		case time.Duration(*g)*time.Second <= mfDrainTime:
			c.addf(o, "terminationGracePeriodSeconds %d does not leave the endpoint its %s to drain", *g, mfDrainTime)
		}
	}
	spec := &d.Spec.Template.Spec
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" {
		if s, _ := mfFindObject[*corev1.ServiceAccount](c.b, d.Namespace, sa); s == nil {
			c.addf(o, "serviceAccountName %q: no ServiceAccount of that name in config/", sa)
		}
	}
	for _, v := range spec.Volumes {
		switch {
		case v.Secret != nil && (v.Secret.Optional == nil || !*v.Secret.Optional):
			if s, _ := mfFindObject[*corev1.Secret](c.b, d.Namespace, v.Secret.SecretName); s == nil {
				c.addf(o, "volume %s: Secret %q is not in config/ (the pod would not start)", v.Name, v.Secret.SecretName)
			}
		case v.ConfigMap != nil && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional):
			if cm, _ := mfFindObject[*corev1.ConfigMap](c.b, d.Namespace, v.ConfigMap.Name); cm == nil {
				c.addf(o, "volume %s: ConfigMap %q is not in config/ (the pod would not start)", v.Name, v.ConfigMap.Name)
			}
		case v.HostPath != nil:
			c.addf(o, "volume %s: hostPath is not allowed (restricted Pod Security)", v.Name)
		}
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	// Mounted keys belong to root: a non-root container reads them through "other", or through
	// the group when fsGroup is set. YAML wants 0440 (octal); 440 would be 0o670.
	for _, v := range spec.Volumes {
		var mode *int32
		switch {
		case v.Secret != nil:
			mode = v.Secret.DefaultMode
		case v.ConfigMap != nil:
			mode = v.ConfigMap.DefaultMode
		}
		if mode == nil {
			continue
		}
		if m := *mode; m < 0 || m > 0o777 || (m&0o004 == 0 && (m&0o040 == 0 || psc.FSGroup == nil)) {
			c.addf(o, "volume %s: defaultMode %#o: the non-root container could not read the files", v.Name, m)
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		c.addf(o, "host namespaces are not allowed (restricted Pod Security)")
	}
	for _, ct := range slices.Concat(spec.InitContainers, spec.Containers) {
		prefix := "container " + ct.Name + ": "
		for _, m := range ct.VolumeMounts {
			v := mfVolume(spec, m.Name)
			switch {
			case v == nil:
				c.addf(o, "%svolumeMount %s: no such volume", prefix, m.Name)
			case m.SubPath != "" && (v.Secret != nil || v.ConfigMap != nil || v.Projected != nil):
				c.addf(o, "%svolumeMount %s: subPath %q stops Secret and ConfigMap updates from reaching the pod", prefix, m.Name, m.SubPath)
			}
		}
		sc := ct.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if !mfBool(sc.RunAsNonRoot, psc.RunAsNonRoot) {
			c.addf(o, "%srunAsNonRoot must be true (container or pod securityContext)", prefix)
		}
		if u := sc.RunAsUser; (u != nil && *u == 0) || (u == nil && psc.RunAsUser != nil && *psc.RunAsUser == 0) {
			c.addf(o, "%srunAsUser must not be 0", prefix)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.addf(o, "%ssecurityContext.allowPrivilegeEscalation must be false", prefix)
		}
		if sc.Privileged != nil && *sc.Privileged {
			c.addf(o, "%ssecurityContext.privileged is not allowed", prefix)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.addf(o, "%ssecurityContext.readOnlyRootFilesystem must be true", prefix)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			c.addf(o, "%ssecurityContext.capabilities.drop must contain ALL", prefix)
		}
		if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
			c.addf(o, "%ssecurityContext.capabilities.add %v: the endpoint needs none", prefix, sc.Capabilities.Add)
		}
		sp := sc.SeccompProfile
		if sp == nil {
			sp = psc.SeccompProfile
		}
		if sp == nil || (sp.Type != corev1.SeccompProfileTypeRuntimeDefault && sp.Type != corev1.SeccompProfileTypeLocalhost) {
			c.addf(o, "%sseccompProfile must be RuntimeDefault or Localhost (container or pod securityContext)", prefix)
		}
		for _, p := range ct.Ports {
			if p.HostPort != 0 {
				c.addf(o, "%sport %s: hostPort is not allowed (restricted Pod Security)", prefix, p.Name)
			}
		}
	}
}

func mfBool(container, pod *bool) bool {
	if container != nil {
		return *container
	}
	return pod != nil && *pod
}

// podsOf returns the Deployment whose pods the selector selects.
func (c *mfChecker) podsOf(ns string, selector map[string]string) (*mfObject, *appsv1.Deployment) {
	if len(selector) == 0 {
		return nil, nil
	}
	sel := labels.SelectorFromSet(selector)
	for _, o := range c.b.objects {
		if d, ok := o.obj.(*appsv1.Deployment); ok && d.Namespace == ns && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return o, d
		}
	}
	return nil, nil
}

// service: selects a Deployment's pods, every targetPort is a port of those pods, the MQTT port
// is exposed by a LoadBalancer, the internal HTTP port is not exposed outside the cluster.
func (c *mfChecker) service(o *mfObject, s *corev1.Service) {
	do, d := c.podsOf(s.Namespace, s.Spec.Selector)
	if d == nil {
		c.addf(o, "selector %s selects the pods of no Deployment in config/", labels.SelectorFromSet(s.Spec.Selector))
		return
	}
	names := map[string]bool{}
	exposesMQTT, exposesHTTP := false, false
	for _, p := range s.Spec.Ports {
		if names[p.Name] {
			c.addf(o, "port %s: declared twice", p.Name)
		}
		names[p.Name] = true
		for _, msg := range validation.IsValidPortName(p.Name) {
			c.addf(o, "port %q: %s", p.Name, msg)
		}
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		var cp *corev1.ContainerPort
		var ct *corev1.Container
		for i := range d.Spec.Template.Spec.Containers {
			cti := &d.Spec.Template.Spec.Containers[i]
			for j := range cti.Ports {
				q := &cti.Ports[j]
				if (target.Type == intstr.String && q.Name == target.StrVal) || (target.Type == intstr.Int && q.ContainerPort == target.IntVal) {
					cp, ct = q, cti
				}
			}
		}
		if cp == nil {
			c.addf(o, "port %s: targetPort %s is not a port of %s %s", p.Name, mfQuotePort(target), do.gvk.Kind, d.Name)
			continue
		}
		if mfProto(p.Protocol) != mfProto(cp.Protocol) {
			c.addf(o, "port %s: protocol %s, but container port %s is %s", p.Name, mfProto(p.Protocol), cp.Name, mfProto(cp.Protocol))
		}
		if c.endpoint != nil && ct == c.endpoint.container {
			exposesMQTT = exposesMQTT || cp.Name == "mqtt"
			exposesHTTP = exposesHTTP || cp.ContainerPort == c.endpoint.httpPort
		}
	}
	if exposesMQTT && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		c.addf(o, "Service %s: exposes the MQTT port to devices, so it must be a LoadBalancer (type %q)", s.Name, s.Spec.Type)
	}
	if exposesHTTP && (s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort) {
		c.addf(o, "Service %s: exposes HTTP_LISTEN (commands, metrics) outside the cluster (type %s); SPEC §3: internal only", s.Name, s.Spec.Type)
	}
}

func mfQuotePort(v intstr.IntOrString) string {
	if v.Type == intstr.String {
		return strconv.Quote(v.StrVal)
	}
	return v.String()
}

func mfProto(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// resolve finds the object a KReference names in config/.
func (c *mfChecker) resolve(ns string, ref *duckv1.KReference) *mfObject {
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	for _, o := range c.b.objects {
		if o.gvk.GroupVersion().String() == ref.APIVersion && o.gvk.Kind == ref.Kind && o.obj.GetName() == ref.Name && o.obj.GetNamespace() == ns {
			return o
		}
	}
	return nil
}

// destination checks that a Destination's ref is in config/, and returns it.
func (c *mfChecker) destination(o *mfObject, field string, ns string, d *duckv1.Destination) *mfObject {
	if d == nil || d.Ref == nil {
		return nil
	}
	target := c.resolve(ns, d.Ref)
	if target == nil {
		c.addf(o, "%s: no %s %s %q in config/", field, d.Ref.APIVersion, d.Ref.Kind, d.Ref.Name)
		return nil
	}
	if s, ok := target.obj.(*corev1.Service); ok && d.CACerts == nil {
		// The resolver sends to http://<name>.<namespace>.svc.cluster.local (port 80).
		if mfServicePort(s, 80) == nil {
			c.addf(o, "%s: Service %s has no port 80 (Knative sends to http://<service>.<namespace>.svc.cluster.local)", field, s.Name)
		}
	}
	return target
}

func mfServicePort(s *corev1.Service, port int32) *corev1.ServicePort {
	for i := range s.Spec.Ports {
		if s.Spec.Ports[i].Port == port {
			return &s.Spec.Ports[i]
		}
	}
	return nil
}

// sinkBinding: the subject is a Deployment of config/, the sink is in config/.
func (c *mfChecker) sinkBinding(o *mfObject, sb *sourcesv1.SinkBinding) {
	subj := sb.Spec.Subject
	if subj.APIVersion != "apps/v1" || subj.Kind != "Deployment" {
		c.addf(o, "spec.subject: %s %s, want an apps/v1 Deployment", subj.APIVersion, subj.Kind)
	} else if subj.Name != "" {
		if d, _ := mfFindObject[*appsv1.Deployment](c.b, sb.Namespace, subj.Name); d == nil {
			c.addf(o, "spec.subject: no apps/v1 Deployment %q in config/", subj.Name)
		}
	} else if subj.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(subj.Selector)
		matched := false
		for _, d := range mfAll[*appsv1.Deployment](c.b) {
			matched = matched || (err == nil && d.Namespace == sb.Namespace && sel.Matches(labels.Set(d.Labels)))
		}
		if !matched {
			c.addf(o, "spec.subject: selector %v matches no Deployment in config/", subj.Selector)
		}
	}
	c.destination(o, "spec.sink", sb.Namespace, &sb.Spec.Sink)
}

// boundBy returns whether a SinkBinding of config/ binds the Deployment.
func (c *mfChecker) boundBy(d *appsv1.Deployment) bool {
	for _, sb := range mfAll[*sourcesv1.SinkBinding](c.b) {
		s := sb.Spec.Subject
		if s.Kind != "Deployment" || sb.Namespace != d.Namespace {
			continue
		}
		if s.Name == d.Name {
			return true
		}
		if s.Name == "" && s.Selector != nil {
			if sel, err := metav1.LabelSelectorAsSelector(s.Selector); err == nil && sel.Matches(labels.Set(d.Labels)) {
				return true
			}
		}
	}
	return false
}

// trigger: Broker and subscriber are in config/; a Trigger to the endpoint's sink filters on a
// type the sink accepts, posts to /, and has retries, a timeout above the command ack timeout
// and a dead-letter sink that is not its own Broker.
func (c *mfChecker) trigger(o *mfObject, tr *eventingv1.Trigger) {
	broker := tr.Spec.Broker
	if tr.Spec.BrokerRef != nil {
		broker = tr.Spec.BrokerRef.Name
	}
	if b, _ := mfFindObject[*eventingv1.Broker](c.b, tr.Namespace, broker); b == nil {
		c.addf(o, "spec.broker: no Broker %q in config/", broker)
	}
	target := c.destination(o, "spec.subscriber", tr.Namespace, &tr.Spec.Subscriber)
	if !c.toEndpoint(o, target) {
		return
	}
	if u := tr.Spec.Subscriber.URI; u != nil && u.Path != "" && u.Path != "/" {
		c.addf(o, "spec.subscriber.uri %q: the endpoint takes commands at POST / (SPEC §7)", u.String())
	}
	types := mfFilterTypes(tr)
	if len(types) == 0 {
		c.addf(o, "spec.filter: no exact type filter: the endpoint would get every event of the Broker")
	}
	for _, typ := range types {
		if !slices.Contains(mfAcceptedTypes, typ) {
			c.addf(o, "spec.filter: type %q is not accepted by the endpoint's sink (%v)", typ, mfAcceptedTypes)
		}
	}
	del := tr.Spec.Delivery
	if del == nil {
		del = &eventingduckv1.DeliverySpec{}
	}
	if del.Retry == nil || *del.Retry < 1 {
		c.addf(o, "spec.delivery.retry: missing: a 503 (device offline) would go straight to the dead letters")
	}
	if del.Timeout != nil && c.endpoint.ackTimeout > 0 {
		p, err := period.Parse(*del.Timeout)
		if d, _ := p.Duration(); err == nil && d <= c.endpoint.ackTimeout {
			c.addf(o, "spec.delivery.timeout %s: not longer than COMMAND_ACK_TIMEOUT (%s): a slow QoS 1 acknowledgement would time out in the Broker instead of answering 504", *del.Timeout, c.endpoint.ackTimeout)
		}
	}
	if del.DeadLetterSink == nil {
		c.addf(o, "spec.delivery.deadLetterSink: missing: undeliverable commands would be lost without a trace")
		return
	}
	if ref := del.DeadLetterSink.Ref; ref != nil && ref.Kind == "Broker" && ref.Name == broker && (ref.Namespace == "" || ref.Namespace == tr.Namespace) {
		c.addf(o, "spec.delivery.deadLetterSink: the Trigger's own Broker %q: dead letters would match the Trigger again", broker)
		return
	}
	c.destination(o, "spec.delivery.deadLetterSink", tr.Namespace, del.DeadLetterSink)
}

// toEndpoint reports whether a Trigger's subscriber is the endpoint's command sink, checking the
// Service's port 80 goes to HTTP_LISTEN.
func (c *mfChecker) toEndpoint(o *mfObject, target *mfObject) bool {
	if target == nil || c.endpoint == nil {
		return false
	}
	s, ok := target.obj.(*corev1.Service)
	if !ok {
		return false
	}
	if _, d := c.podsOf(s.Namespace, s.Spec.Selector); d != c.endpoint.deployment {
		return false
	}
	p := mfServicePort(s, 80)
	if p == nil {
		return true // reported by destination()
	}
	target80 := p.TargetPort
	if target80.Type == intstr.Int && target80.IntVal == 0 {
		target80 = intstr.FromInt32(p.Port)
	}
	if n, ok := mfContainerPort(c.endpoint.container, target80); ok && n != c.endpoint.httpPort {
		c.addf(o, "spec.subscriber: Service %s port 80 goes to the endpoint's port %d, not to HTTP_LISTEN (%d)", s.Name, n, c.endpoint.httpPort)
	}
	return true
}

// mfFilterTypes returns the exact types a Trigger filters on (filter.attributes, or the exact
// dialect of filters).
func mfFilterTypes(tr *eventingv1.Trigger) []string {
	var types []string
	if tr.Spec.Filter != nil {
		if t, ok := tr.Spec.Filter.Attributes["type"]; ok && t != "" {
			types = append(types, t)
		}
	}
	for _, f := range tr.Spec.Filters {
		if t, ok := f.Exact["type"]; ok {
			types = append(types, t)
		}
	}
	return types
}

// eventType: the reference is in config/, the type is one the endpoint emits or accepts, the
// attribute names are CloudEvents names, emitted types declare the endpoint's extensions.
func (c *mfChecker) eventType(o *mfObject, et *eventingv1beta3.EventType) {
	if et.Spec.Reference == nil {
		c.addf(o, "spec.reference: missing (the Broker the type flows through)")
	} else if c.resolve(et.Namespace, et.Spec.Reference) == nil {
		r := et.Spec.Reference
		c.addf(o, "spec.reference: no %s %s %q in config/", r.APIVersion, r.Kind, r.Name)
	}
	attrs := map[string]eventingv1beta3.EventAttributeDefinition{}
	for _, a := range et.Spec.Attributes {
		if _, dup := attrs[a.Name]; dup {
			c.addf(o, "attribute %q: listed twice", a.Name)
		}
		attrs[a.Name] = a
		if !mfCEAttributeName.MatchString(a.Name) {
			c.addf(o, "attribute %q: CloudEvents attribute names are 1-20 lower-case letters and digits", a.Name)
		}
	}
	typ := attrs["type"].Value
	switch {
	case slices.Contains(mfEmittedTypes, typ):
		for _, ext := range mfEmittedExtensions {
			if _, ok := attrs[ext]; !ok {
				c.addf(o, "EventType %s: no attribute %s, an extension the endpoint sets on every event", et.Name, ext)
			}
		}
	case slices.Contains(mfAcceptedTypes, typ):
	default:
		c.addf(o, "type %q is neither emitted nor accepted by the endpoint (emitted %v, accepted %v)", typ, mfEmittedTypes, mfAcceptedTypes)
	}
}

// coverage: the endpoint is bound to a sink, commands reach it, every type has an EventType.
func (c *mfChecker) coverage() {
	if c.endpoint == nil {
		return
	}
	if !c.boundBy(c.endpoint.deployment) {
		c.addf(c.endpoint.o, "no SinkBinding gives Deployment %s its K_SINK", c.endpoint.deployment.Name)
	}
	for _, typ := range mfAcceptedTypes {
		found := false
		for _, o := range c.b.objects {
			tr, ok := o.obj.(*eventingv1.Trigger)
			if !ok || !slices.Contains(mfFilterTypes(tr), typ) || tr.Spec.Subscriber.Ref == nil {
				continue
			}
			if target := c.resolve(tr.Namespace, tr.Spec.Subscriber.Ref); target != nil {
				if s, ok := target.obj.(*corev1.Service); ok {
					_, d := c.podsOf(s.Namespace, s.Spec.Selector)
					found = found || d == c.endpoint.deployment
				}
			}
		}
		if !found {
			c.addf(nil, "no Trigger delivers %s to the endpoint's command sink", typ)
		}
	}
	declared := map[string]bool{}
	for _, et := range mfAll[*eventingv1beta3.EventType](c.b) {
		for _, a := range et.Spec.Attributes {
			if a.Name == "type" {
				declared[a.Value] = true
			}
		}
	}
	for _, typ := range mfEmittedTypes {
		if !declared[typ] {
			c.addf(nil, "no EventType declares %s (emitted)", typ)
		}
	}
	for _, typ := range mfAcceptedTypes {
		if !declared[typ] {
			c.addf(nil, "no EventType declares %s (accepted)", typ)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Helpers.

// mfAll returns the objects of type T.
func mfAll[T metav1.Object](b *mfBundle) []T {
	var out []T
	for _, o := range b.objects {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// mfFindObject returns the object of type T with that namespace and name.
func mfFindObject[T metav1.Object](b *mfBundle, ns, name string) (T, *mfObject) {
	for _, o := range b.objects {
		if v, ok := o.obj.(T); ok && o.obj.GetName() == name && o.obj.GetNamespace() == ns {
			return v, o
		}
	}
	var zero T
	return zero, nil
}

// mfFind returns the object of type T with that name (for mutations), failing the test without it.
func mfFind[T metav1.Object](t *testing.T, b *mfBundle, name string) T {
	t.Helper()
	for _, o := range b.objects {
		if v, ok := o.obj.(T); ok && o.obj.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("mutation: no %T %q in config/", zero, name)
	return zero
}

func mfEndpointContainer(t *testing.T, b *mfBundle) *corev1.Container {
	t.Helper()
	d := mfFind[*appsv1.Deployment](t, b, "mqtt-endpoint")
	return &d.Spec.Template.Spec.Containers[0]
}

func mfEnvOf(t *testing.T, b *mfBundle, name string) *corev1.EnvVar {
	t.Helper()
	if ev := mfEnvVar(mfEndpointContainer(t, b), name); ev != nil {
		return ev
	}
	t.Fatalf("mutation: the endpoint container has no env %s", name)
	return nil
}

func mfPtr[T any](v T) *T { return &v }

func mfReadFS(t *testing.T, fsys fs.FS) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		m[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mfCloneFS(m fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range m {
		out[k] = &fstest.MapFile{Data: slices.Clone(v.Data)}
	}
	return out
}

// mfReplace edits one file of a mutation; old must occur exactly once.
func mfReplace(t *testing.T, f fstest.MapFS, file, old, new string) {
	t.Helper()
	mf, ok := f[file]
	if !ok {
		t.Fatalf("mutation: no file %s", file)
	}
	if n := strings.Count(string(mf.Data), old); n != 1 {
		t.Fatalf("mutation: %q occurs %d times in %s, want once", old, n, file)
	}
	mf.Data = []byte(strings.Replace(string(mf.Data), old, new, 1))
}
