// Package install holds the tests of what installs popconnect: the Helm
// chart (charts/popconnect), the kustomize tree (config/default) and the
// Argo CD health checks (config/argocd). Run them with
//
//	go test ./test/install/
//
// The chart tests need helm (`make helm`, or $HELM); the dry-run apply test
// needs the envtest binaries (`make envtest`, or $KUBEBUILDER_ASSETS).
package install
