package render

import (
	"testing"

	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// TestGatewayPodSecurityRestricted evaluates every case's gateway pod with
// the checks the PodSecurity admission plugin runs, at the latest
// "restricted" level.
func TestGatewayPodSecurityRestricted(t *testing.T) {
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	level := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	for name, gw := range gatewayCases(t) {
		t.Run(name, func(t *testing.T) {
			template := GatewayDeployment(gw, GatewayOptions{DefaultImage: gatewayTestImage}).Spec.Template
			for _, result := range evaluator.EvaluatePod(level, &template.ObjectMeta, &template.Spec) {
				if !result.Allowed {
					t.Errorf("restricted check failed: %s: %s", result.ForbiddenReason, result.ForbiddenDetail)
				}
			}
		})
	}
}
