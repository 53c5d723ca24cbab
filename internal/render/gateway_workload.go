package render

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// Values of LabelComponent on a gateway's children.
const (
	// GatewayComponentGateway marks the gateway workload: its pods,
	// Deployment, ServiceAccount, Service and PodDisruptionBudget.
	GatewayComponentGateway = "gateway"
	// GatewayComponentPolicyReader marks the Role and RoleBinding that let
	// the gateway read its policy shards.
	GatewayComponentPolicyReader = "policy-reader"
	// GatewayComponentServingCertificate marks the serving Certificate and
	// the Secret cert-manager writes for it.
	GatewayComponentServingCertificate = "serving-certificate"
	// GatewayComponentDefaultDeny marks the default-deny NetworkPolicy.
	GatewayComponentDefaultDeny = "default-deny"

	// GatewayPolicyVersionAnnotation is set on the Deployment (never on its
	// pod template) to GatewayOptions.PolicyVersion.
	GatewayPolicyVersionAnnotation = "popconnect.io/policy-version"
)

// Defaults of optional PopulationGateway fields, used when the object was not
// defaulted by the API server (e.g. in tests).
const (
	gatewayDefaultReplicas = 2
	gatewayDefaultPort     = 8443
	gatewayDefaultTimeout  = "5s"
	// gatewayDefaultPostgresPort is spec.audit.postgres.port's default.
	gatewayDefaultPostgresPort = 5432
)

// The gateway container's layout: fixed ports, and where each Secret is
// mounted. The gateway binary takes every path as a flag, so these appear
// only here.
const (
	gatewayContainerName = "gateway"
	gatewayHTTPSPortName = "https"
	gatewayMetricsPort   = 9090
	// gatewayMetricsPortName is also the probes' port: /healthz and /readyz
	// are served on the plain-HTTP metrics listener only.
	gatewayMetricsPortName = "metrics"
	// gatewayUID is the "nonroot" user of distroless images.
	gatewayUID = 65532

	gatewayServingDir    = "/etc/popconnect/serving"
	gatewayClientCADir   = "/etc/popconnect/client-ca"
	gatewayUpstreamCADir = "/etc/popconnect/upstream-ca"
	gatewayAuditKeyDir   = "/etc/popconnect/audit-key"
	// gatewayAuditPostgresDir holds the PostgreSQL audit store's connection
	// URL, in the file gatewayAuditPostgresFile, whatever the Secret's key.
	gatewayAuditPostgresDir  = "/etc/popconnect/audit-postgres"
	gatewayAuditPostgresFile = "url"
	// gatewayRedisPasswordDir holds the rate-limit Redis password, in the
	// file gatewayRedisPasswordFile, whatever the Secret's key;
	// gatewayRedisCADir the CA that verifies it over TLS.
	gatewayRedisPasswordDir  = "/etc/popconnect/ratelimit-redis"
	gatewayRedisPasswordFile = "password"
	gatewayRedisCADir        = "/etc/popconnect/ratelimit-redis-ca"
	// gatewayCAKey is the data key of a CA bundle in the client and upstream
	// CA Secrets, as in cert-manager's Secrets.
	gatewayCAKey = "ca.crt"
	// gatewayAuditKeyKey is the data key of the audit key Secret.
	gatewayAuditKeyKey = "key"
	// gatewaySecretMode lets the owner and, through fsGroup, the gateway's
	// group read the files; nobody writes them.
	gatewaySecretMode int32 = 0o440
)

// GatewayOptions are the operator's settings that shape a gateway's
// Deployment.
type GatewayOptions struct {
	// DefaultImage is the operator's --gateway-image, used when
	// gw.Spec.Image is empty.
	DefaultImage string
	// PolicyVersion, when set, is recorded in the Deployment's
	// GatewayPolicyVersionAnnotation. It is never put into the pod template:
	// gateways reload their policy live, and a restart would drop requests.
	PolicyVersion string
}

// gatewayMeta is the metadata every child of gw carries. Owner references
// are left to the reconciler.
func gatewayMeta(gw *popv1.PopulationGateway, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: gw.Namespace,
		Labels:    gatewayLabels(gw, component),
	}
}

// gatewayLabels are the labels of gw's children whose component is given.
func gatewayLabels(gw *popv1.PopulationGateway, component string) map[string]string {
	labels := GatewayPodLabels(gw.Name)
	labels[LabelManagedBy] = ManagedByValue
	labels[LabelGateway] = GatewayLabelValue(gw.Name)
	labels[LabelComponent] = component
	return labels
}

// gatewaySelector selects gw's pods; it is also the Deployment's selector,
// which cannot change once created.
func gatewaySelector(gw *popv1.PopulationGateway) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: GatewayPodLabels(gw.Name)}
}

// gatewayListenPort is the port agencies connect to, on the Service and the
// pods alike, so that connection NetworkPolicies (which match pod ports) can
// use it.
func gatewayListenPort(gw *popv1.PopulationGateway) int32 {
	if gw.Spec.Port != nil {
		return *gw.Spec.Port
	}
	return gatewayDefaultPort
}

// GatewayServiceAccount is the identity of gw's pods.
func GatewayServiceAccount(gw *popv1.PopulationGateway) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "ServiceAccount"},
		ObjectMeta: gatewayMeta(gw, NamesFor(gw).ServiceAccount, GatewayComponentGateway),
		// The gateway watches its policy shards through the API, so it
		// needs its token.
		AutomountServiceAccountToken: ptr.To(true),
	}
}

// GatewayRole lets gw's pods read ConfigMaps in their own namespace, where
// the policy shards are; nothing else. The shards' names change as the policy
// grows, so the rule cannot name them.
func GatewayRole(gw *popv1.PopulationGateway) *rbacv1.Role {
	names := NamesFor(gw)
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"},
		ObjectMeta: gatewayMeta(gw, names.Role, GatewayComponentPolicyReader),
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""},
			Resources: []string{"configmaps"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
}

// GatewayRoleBinding grants GatewayRole to gw's ServiceAccount.
func GatewayRoleBinding(gw *popv1.PopulationGateway) *rbacv1.RoleBinding {
	names := NamesFor(gw)
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: gatewayMeta(gw, names.RoleBinding, GatewayComponentPolicyReader),
		RoleRef: rbacv1.RoleRef{
			APIGroup: rbacv1.GroupName,
			Kind:     "Role",
			Name:     names.Role,
		},
		Subjects: []rbacv1.Subject{{
			Kind:      rbacv1.ServiceAccountKind,
			Name:      names.ServiceAccount,
			Namespace: gw.Namespace,
		}},
	}
}

// GatewayService is the in-cluster address of gw: its port forwards to the
// pods' "https" port. The metrics port is not exposed here; it is scraped
// from the pods.
func GatewayService(gw *popv1.PopulationGateway) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "Service"},
		ObjectMeta: gatewayMeta(gw, NamesFor(gw).Service, GatewayComponentGateway),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: GatewayPodLabels(gw.Name),
			Ports: []corev1.ServicePort{{
				Name:       gatewayHTTPSPortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       gatewayListenPort(gw),
				TargetPort: intstr.FromString(gatewayHTTPSPortName),
			}},
		},
	}
}

// GatewayPodDisruptionBudget lets voluntary disruptions (node drains) take
// down one gateway pod at a time.
func GatewayPodDisruptionBudget(gw *popv1.PopulationGateway) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: policyv1.SchemeGroupVersion.String(), Kind: "PodDisruptionBudget"},
		ObjectMeta: gatewayMeta(gw, NamesFor(gw).PodDisruptionBudget, GatewayComponentGateway),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       gatewaySelector(gw),
			// A pod that is not ready serves nothing, so evicting it costs
			// nothing; without this a crash-looping pod blocks every drain.
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}

// GatewayDeployment runs gw's pods. Its pod template depends on gw's spec
// and opts.DefaultImage only, so that nothing else (a new policy, a renewed
// certificate, a rotated client CA) rolls the pods: the gateway reloads its
// policy, certificate and CA files live.
func GatewayDeployment(gw *popv1.PopulationGateway, opts GatewayOptions) *appsv1.Deployment {
	names := NamesFor(gw)
	meta := gatewayMeta(gw, names.Deployment, GatewayComponentGateway)
	if opts.PolicyVersion != "" {
		meta.Annotations = map[string]string{GatewayPolicyVersionAnnotation: opts.PolicyVersion}
	}
	replicas := GatewayReplicas(gw)
	// The pods carry the managed-by and gateway labels too (not in the
	// selector, which cannot change): the operator's pod cache holds only
	// managed-by=popconnect pods and maps each to its gateway by the
	// gateway label.
	podLabels := gatewayLabels(gw, GatewayComponentGateway)

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: gatewaySelector(gw),
			// Surge one new pod before an old one stops, so a rollout never
			// lowers capacity.
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       gatewayPodSpec(gw, names, opts),
			},
		},
	}
}

// gatewayPodSpec is the pod of GatewayDeployment. It meets the "restricted"
// Pod Security Standard.
func gatewayPodSpec(gw *popv1.PopulationGateway, names GatewayNames, opts GatewayOptions) corev1.PodSpec {
	image := gw.Spec.Image
	if image == "" {
		image = opts.DefaultImage
	}
	port := gatewayListenPort(gw)
	volumes, mounts := gatewayVolumes(gw, names)

	podSecurity := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](gatewayUID),
		RunAsGroup:     ptr.To[int64](gatewayUID),
		FSGroup:        ptr.To[int64](gatewayUID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if port < 1024 {
		// A non-root process without capabilities cannot bind a port below
		// 1024 unless the pod's network namespace allows it. This sysctl is
		// namespaced and "safe", so the restricted standard permits it.
		podSecurity.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	}

	return corev1.PodSpec{
		ServiceAccountName:           names.ServiceAccount,
		AutomountServiceAccountToken: ptr.To(true),
		// The preStop pause, then the gateway's --shutdown-grace (25s), with
		// room to spare: requests in flight finish and the audit log is
		// flushed before SIGKILL.
		TerminationGracePeriodSeconds: ptr.To[int64](gatewayPreStopSeconds + 25 + 5),
		SecurityContext:               podSecurity,
		TopologySpreadConstraints:     gatewaySpread(gw),
		Containers: []corev1.Container{{
			Name:  gatewayContainerName,
			Image: image,
			Args:  gatewayArgs(gw, port),
			Ports: []corev1.ContainerPort{
				{Name: gatewayHTTPSPortName, ContainerPort: port, Protocol: corev1.ProtocolTCP},
				{Name: gatewayMetricsPortName, ContainerPort: gatewayMetricsPort, Protocol: corev1.ProtocolTCP},
			},
			ReadinessProbe: gatewayProbe("/readyz"),
			LivenessProbe:  gatewayProbe("/healthz"),
			// A terminating pod leaves the Service's endpoints at once, but
			// each node's proxy learns it a moment later and sends it new
			// connections meanwhile: the pause keeps the gateway serving
			// them before SIGTERM closes its listener. Without it a rolling
			// update refused a connection under load (test/e2e). The sleep
			// action needs no shell, which the image has not.
			Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
				Sleep: &corev1.SleepAction{Seconds: gatewayPreStopSeconds},
			}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				},
				// No CPU limit: throttling would add latency to every
				// lookup; memory is bounded so a leak cannot starve the node.
				Limits: corev1.ResourceList{
					corev1.ResourceMemory: resource.MustParse("256Mi"),
				},
			},
			VolumeMounts: mounts,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
		Volumes: volumes,
	}
}

// gatewayArgs are the gateway binary's flags, in a fixed order.
func gatewayArgs(gw *popv1.PopulationGateway, port int32) []string {
	timeout := gatewayDefaultTimeout
	if t := gw.Spec.Upstream.Timeout; t != nil {
		timeout = t.Duration.String()
	}
	args := []string{
		"--policy-namespace=" + gw.Namespace,
		"--policy-selector=" + LabelGateway + "=" + GatewayLabelValue(gw.Name),
		"--upstream-url=" + gw.Spec.Upstream.URL,
		"--upstream-timeout=" + timeout,
	}
	if gw.Spec.Upstream.CASecretRef != nil {
		args = append(args, "--upstream-ca-file="+gatewayUpstreamCADir+"/"+gatewayCAKey)
	}
	args = append(args,
		"--listen-address=:"+strconv.Itoa(int(port)),
		"--tls-cert-file="+gatewayServingDir+"/"+corev1.TLSCertKey,
		"--tls-key-file="+gatewayServingDir+"/"+corev1.TLSPrivateKeyKey,
		"--client-ca-file="+gatewayClientCADir+"/"+gatewayCAKey,
		"--metrics-address=:"+strconv.Itoa(gatewayMetricsPort),
	)
	if gatewayAuditPostgres(gw) != nil {
		// The URL is read from a file, never from an argument or the
		// environment, where anyone who may read the pod would see the
		// password. Its Secret's name and key are in the volume, so a
		// change of either rolls the pods; a change of the Secret's
		// content is read at the pods' next start.
		args = append(args, "--audit-postgres-url-file="+gatewayAuditPostgresDir+"/"+gatewayAuditPostgresFile)
	} else {
		// Audit records go to stdout, where the node's log pipeline
		// collects them; the root filesystem is read-only anyway.
		args = append(args, "--audit-file=-")
	}
	args = append(args, "--audit-hash-key-file="+gatewayAuditKeyDir+"/"+gatewayAuditKeyKey)
	return append(args, gatewayRateLimitArgs(gw)...)
}

// GatewayReplicas is spec.replicas, defaulted.
func GatewayReplicas(gw *popv1.PopulationGateway) int32 {
	if gw.Spec.Replicas != nil {
		return *gw.Spec.Replicas
	}
	return gatewayDefaultReplicas
}

// GatewayRedis is gw's Redis rate-limit store, nil when each replica
// counts alone.
func GatewayRedis(gw *popv1.PopulationGateway) *popv1.RedisRateLimitStoreSpec {
	if gw.Spec.RateLimitStore == nil {
		return nil
	}
	return gw.Spec.RateLimitStore.Redis
}

// gatewayRateLimitArgs point the gateway at its Redis store: the URL (no
// credentials: the password is a file), a key prefix of its own so that
// gateways sharing a server keep their counts apart, and the replica count
// that divides the limits while Redis is unreachable (a change of
// spec.replicas therefore rolls the pods).
func gatewayRateLimitArgs(gw *popv1.PopulationGateway) []string {
	r := GatewayRedis(gw)
	if r == nil {
		return nil
	}
	scheme := "redis"
	if r.TLS != nil {
		scheme = "rediss"
	}
	db := int32(0)
	if r.DB != nil {
		db = *r.DB
	}
	replicas := max(1, GatewayReplicas(gw))
	args := []string{
		fmt.Sprintf("--ratelimit-redis-url=%s://%s/%d", scheme, r.Address, db),
		"--ratelimit-redis-key-prefix=popconnect:" + gw.Namespace + "/" + gw.Name + ":",
		"--ratelimit-replicas=" + strconv.Itoa(int(replicas)),
	}
	if r.PasswordSecretRef != nil {
		args = append(args, "--ratelimit-redis-password-file="+gatewayRedisPasswordDir+"/"+gatewayRedisPasswordFile)
	}
	if r.TLS != nil && r.TLS.CASecretRef != nil {
		args = append(args, "--ratelimit-redis-ca-file="+gatewayRedisCADir+"/"+gatewayCAKey)
	}
	return args
}

// gatewayAuditPostgres is gw's PostgreSQL audit store, nil when its audit
// records go to stdout.
func gatewayAuditPostgres(gw *popv1.PopulationGateway) *popv1.PostgresAuditSpec {
	if gw.Spec.Audit == nil {
		return nil
	}
	return gw.Spec.Audit.Postgres
}

// gatewayVolumes are the Secrets the gateway reads, each projected to the
// keys it needs, and where they are mounted.
func gatewayVolumes(gw *popv1.PopulationGateway, names GatewayNames) ([]corev1.Volume, []corev1.VolumeMount) {
	type secretVolume struct {
		name, secret, dir string
		items             []corev1.KeyToPath
	}
	secrets := []secretVolume{
		{"serving-tls", names.ServingSecret, gatewayServingDir, sameKeys(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)},
		{"client-ca", gw.Spec.ClientCA.SecretRef.Name, gatewayClientCADir, sameKeys(gatewayCAKey)},
	}
	if ref := gw.Spec.Upstream.CASecretRef; ref != nil {
		secrets = append(secrets, secretVolume{"upstream-ca", ref.Name, gatewayUpstreamCADir, sameKeys(gatewayCAKey)})
	}
	secrets = append(secrets, secretVolume{"audit-key", names.AuditKeySecret, gatewayAuditKeyDir, sameKeys(gatewayAuditKeyKey)})
	if pg := gatewayAuditPostgres(gw); pg != nil {
		// Only the one key, under a fixed file name: the Secret may hold
		// other credentials the gateway has no use for.
		secrets = append(secrets, secretVolume{"audit-postgres", pg.URLSecretRef.Name, gatewayAuditPostgresDir,
			[]corev1.KeyToPath{{Key: pg.URLSecretRef.Key, Path: gatewayAuditPostgresFile}}})
	}
	if r := GatewayRedis(gw); r != nil {
		if ref := r.PasswordSecretRef; ref != nil {
			secrets = append(secrets, secretVolume{"ratelimit-redis", ref.Name, gatewayRedisPasswordDir,
				[]corev1.KeyToPath{{Key: ref.Key, Path: gatewayRedisPasswordFile}}})
		}
		if r.TLS != nil && r.TLS.CASecretRef != nil {
			secrets = append(secrets, secretVolume{"ratelimit-redis-ca", r.TLS.CASecretRef.Name, gatewayRedisCADir, sameKeys(gatewayCAKey)})
		}
	}

	volumes := make([]corev1.Volume, 0, len(secrets))
	mounts := make([]corev1.VolumeMount, 0, len(secrets))
	for _, s := range secrets {
		volumes = append(volumes, corev1.Volume{
			Name: s.name,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  s.secret,
				Items:       s.items,
				DefaultMode: ptr.To(gatewaySecretMode),
			}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: s.name, MountPath: s.dir, ReadOnly: true})
	}
	return volumes, mounts
}

// sameKeys projects each key to a file of its own name.
func sameKeys(keys ...string) []corev1.KeyToPath {
	items := make([]corev1.KeyToPath, 0, len(keys))
	for _, k := range keys {
		items = append(items, corev1.KeyToPath{Key: k, Path: k})
	}
	return items
}

// gatewayPreStopSeconds is how long a terminating gateway pod keeps serving
// before SIGTERM, while the Service's proxies stop sending it connections.
const gatewayPreStopSeconds = 5

// gatewayProbe probes path on the metrics port.
func gatewayProbe(path string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   path,
			Port:   intstr.FromString(gatewayMetricsPortName),
			Scheme: corev1.URISchemeHTTP,
		}},
	}
}

// gatewaySpread spreads gw's pods over nodes and zones. Both are preferences
// (ScheduleAnyway): a cluster with one node or without zone labels must
// still run every replica. matchLabelKeys keeps each rollout's new pods
// spread among themselves rather than against the old ones.
func gatewaySpread(gw *popv1.PopulationGateway) []corev1.TopologySpreadConstraint {
	keys := []string{corev1.LabelHostname, corev1.LabelTopologyZone}
	constraints := make([]corev1.TopologySpreadConstraint, 0, len(keys))
	for _, key := range keys {
		constraints = append(constraints, corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     gatewaySelector(gw),
			MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
		})
	}
	return constraints
}
