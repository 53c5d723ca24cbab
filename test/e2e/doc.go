// Package e2e runs popconnect on a real single-node Kubernetes cluster, as a
// user's cluster runs it: images built from this repository and imported
// into containerd, the operator installed with its Helm chart, the samples
// applied with kubectl, gateway pods started by the kubelet.
//
// The tests carry the build tag e2e and need a cluster from
// hack/e2e/cluster.sh; `make e2e` builds the images, brings the cluster up,
// runs them and always brings it down:
//
//	make e2e
//	make e2e E2E_KEEP=1    # leave the cluster running afterwards
//
// They find the cluster through $KUBECONFIG, kubectl through $KUBECTL and
// helm through $HELM.
package e2e
