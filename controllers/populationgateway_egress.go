package controllers

import (
	"context"
	"fmt"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// The API server's endpoints are the EndpointSlices of Service
// default/kubernetes; the manager caches those and nothing else of the kind.
const (
	apiServerServiceNamespace = metav1.NamespaceDefault
	apiServerServiceName      = "kubernetes"
)

// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// gatewayEgress renders the gateway's default-deny policy from its spec and
// the API server's endpoints, and reports in NetworkReady what it could not
// allow yet.
func (r *PopulationGatewayReconciler) gatewayEgress(ctx context.Context, s *gatewayState) (*render.GatewayEgress, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(apiServerServiceNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: apiServerServiceName}); err != nil {
		return nil, fmt.Errorf("listing the API server's EndpointSlices: %w", err)
	}
	egress := render.GatewayDefaultDenyNetworkPolicy(s.gw, render.GatewayEgressPeers{APIServer: list.Items, Manager: r.Manager})
	if len(egress.Unresolved) > 0 {
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonEgressUnresolved,
			strings.Join(egress.Unresolved, " "))
	} else {
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionTrue, popv1.ReasonApplied, fmt.Sprintf(
			"NetworkPolicy %s lets the gateway pods reach only DNS, the upstream and the API server's endpoints.",
			egress.Policy.Name))
	}
	return &egress, nil
}

// allGateways maps a change of the API server's endpoints to every gateway:
// each one's egress names them. They change rarely.
func (r *PopulationGatewayReconciler) allGateways(ctx context.Context, _ client.Object) []reconcile.Request {
	var list popv1.PopulationGatewayList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	return requestsFor(list.Items, nil)
}
