# popconnect — build, generate, test. Run `make help` for the targets.

# Tool versions, pinned. controller-gen generates CRDs, RBAC and deepcopy.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
# envtest control plane, built from source by hack/envtest-binaries.sh.
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ETCD_VERSION ?= 3.7.3

IMG ?= ghcr.io/popconnect/popconnect-manager:latest
GATEWAY_IMG ?= ghcr.io/popconnect/popconnect-gateway:latest

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GO_TEST_FLAGS ?= -count=1 -timeout 25m

# KUBEBUILDER_ASSETS is where envtest finds kube-apiserver and etcd. It lives
# outside the clone (setup-envtest's cache) so fresh clones reuse the build.
ENVTEST_ASSETS = $(shell K8S_VERSION=$(ENVTEST_K8S_VERSION) ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-binaries.sh --print)
# POSTGRES_BIN is where the tests find Debian's PostgreSQL server (initdb,
# postgres) to run a real database of their own; `make postgres` installs it.
POSTGRES_BIN = $(shell hack/postgres.sh --print)
# REDIS_SERVER is Debian's redis-server, which the tests of the shared rate
# limits run on a port of their own; `make redis` installs it.
REDIS_SERVER = $(shell hack/redis.sh --print)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and the manager's RBAC Role from kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -l -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: envtest
envtest: ## Build (once) the envtest kube-apiserver and etcd from source; prints their directory.
	@K8S_VERSION=$(ENVTEST_K8S_VERSION) ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-binaries.sh

.PHONY: postgres
postgres: ## Install (once) Debian's PostgreSQL server, which the audit sink's tests run; prints its bin directory.
	@hack/postgres.sh

.PHONY: redis
redis: ## Install (once) Debian's Redis server, which the shared rate limits' tests run; prints its path.
	@hack/redis.sh

.PHONY: test
test: manifests generate vet envtest helm postgres redis h2spec ## Run every test, the envtest and PostgreSQL ones included.
	HELM="$(HELM)" H2SPEC="$(H2SPEC)" KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" POSTGRES_BIN="$(POSTGRES_BIN)" REDIS_SERVER="$(REDIS_SERVER)" go test $(GO_TEST_FLAGS) ./...
	# The gateway again under the race detector: it swaps policies, reloads
	# certificates and flushes audit records while requests run.
	POSTGRES_BIN="$(POSTGRES_BIN)" REDIS_SERVER="$(REDIS_SERVER)" go test -race $(GO_TEST_FLAGS) ./gateway/...
	# The e2e images' own module (./... above does not enter it): the
	# agency client's outcome and summary logic.
	cd hack/e2e/images && go vet ./... && go test $(GO_TEST_FLAGS) ./...

FUZZTIME ?= 60s
.PHONY: fuzz
fuzz: ## Fuzz the filter and the request and audit-line parsers, FUZZTIME each (make test runs their seed corpora).
	go test ./gateway/filter -run '^$$' -fuzz '^FuzzFilter$$' -fuzztime $(FUZZTIME)
	go test ./gateway/audit/verify -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $(FUZZTIME)
	go test ./gateway/h1server -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME)
	for f in FuzzLookupPath FuzzFields FuzzVerifyBody FuzzBatchBody FuzzPolicyDocument; do \
		go test ./gateway -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

.PHONY: verify
verify: ## Regenerate every generated file and fail if any differs from what is committed.
	hack/verify.sh

##@ Build

.PHONY: build
build: manifests generate ## Build the manager, the gateway and the audit verifier into bin/.
	go build -trimpath -o $(LOCALBIN)/manager .
	go build -trimpath -o $(LOCALBIN)/gateway ./cmd/gateway
	go build -trimpath -o $(LOCALBIN)/popconnect-audit ./cmd/popconnect-audit
	go build -trimpath -o $(LOCALBIN)/popdb-sim ./cmd/popdb-sim

.PHONY: run
run: manifests generate ## Run the manager against the cluster in $KUBECONFIG.
	go run . --leader-elect=false --gateway-image=$(GATEWAY_IMG)

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/ at the pinned version.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

# h2spec, the HTTP/2 conformance suite that cmd/gateway's TestH2Spec runs
# against the agency port. Its version and its dependencies' are pinned in
# hack/tools/h2spec/go.mod (h2spec has no go.mod of its own).
H2SPEC_VERSION = $(shell awk '$$1 == "require" && $$2 == "github.com/summerwind/h2spec" { sub(/\+incompatible/, "", $$3); print $$3 }' hack/tools/h2spec/go.mod)
H2SPEC ?= $(LOCALBIN)/h2spec-$(H2SPEC_VERSION)

.PHONY: h2spec
h2spec: $(H2SPEC) ## Build h2spec into bin/ at the version pinned in hack/tools/h2spec.
$(H2SPEC): hack/tools/h2spec/go.mod hack/tools/h2spec/go.sum | $(LOCALBIN)
	go -C hack/tools/h2spec build -trimpath -o $(H2SPEC) github.com/summerwind/h2spec/cmd/h2spec

##@ Deployment

HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CONTAINER_TOOL ?= docker
KUBECTL ?= kubectl
# The images config/manager/manager.yaml names; `make deploy` swaps in
# $(IMG) and $(GATEWAY_IMG).
DEFAULT_IMG = ghcr.io/popconnect/popconnect-manager:latest
DEFAULT_GATEWAY_IMG = ghcr.io/popconnect/popconnect-gateway:latest

.PHONY: chart-crds
chart-crds: ## Generate the Helm chart's CRDs and manager RBAC rules from config/ (after `make manifests`).
	hack/chart-crds.sh

.PHONY: helm
helm: $(HELM) ## Install helm into bin/ at the pinned version (bin/helm links to it).
$(HELM): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $(HELM)
	ln -sf $(notdir $(HELM)) $(LOCALBIN)/helm

.PHONY: helm-lint
helm-lint: helm ## Lint the Helm chart.
	$(HELM) lint --strict charts/popconnect

# E2E_RUN_DIR holds the e2e cluster: certificates, etcd, containerd, the
# kubelet, images and logs (outside the clone). E2E_KEEP=1 leaves it running.
E2E_RUN_DIR ?= /tmp/popconnect-e2e

.PHONY: e2e
e2e: envtest helm ## Run the end-to-end tests on a single-node cluster built from parts (root; see docs/development.md).
	E2E_RUN_DIR="$(E2E_RUN_DIR)" HELM="$(HELM)" K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/e2e/run.sh

.PHONY: e2e-down
e2e-down: ## Stop an e2e cluster left running (make e2e E2E_KEEP=1).
	E2E_RUN_DIR="$(E2E_RUN_DIR)" hack/e2e/cluster.sh down

.PHONY: test-install
test-install: manifests chart-crds helm envtest ## Test the chart, config/default and the Argo CD health checks.
	HELM="$(HELM)" KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test $(GO_TEST_FLAGS) ./test/install/

.PHONY: docker-build
docker-build: ## Build the manager and gateway images ($(IMG), $(GATEWAY_IMG)).
	$(CONTAINER_TOOL) build --target manager -t $(IMG) .
	$(CONTAINER_TOOL) build --target gateway -t $(GATEWAY_IMG) .

.PHONY: docker-push
docker-push: ## Push the manager and gateway images.
	$(CONTAINER_TOOL) push $(IMG)
	$(CONTAINER_TOOL) push $(GATEWAY_IMG)

.PHONY: install
install: manifests ## Install the CRDs into the cluster in $KUBECONFIG.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs, and with them every popconnect object, from the cluster.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator (config/default) with $(IMG) and $(GATEWAY_IMG) to the cluster in $KUBECONFIG.
	$(KUBECTL) kustomize config/default \
		| sed -e 's|$(DEFAULT_IMG)|$(IMG)|g' -e 's|$(DEFAULT_GATEWAY_IMG)|$(GATEWAY_IMG)|g' \
		| $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove the operator (config/default), its CRDs included, from the cluster.
	$(KUBECTL) delete --ignore-not-found -k config/default

##@ Benchmarks

N ?= 10000
BENCH_FLAGS ?=
.PHONY: bench-controlplane
bench-controlplane: envtest ## The operator with N connections on envtest: convergence vs raw creates, RSS, idle writes, suspension at a gateway (N=1000 for a quick run).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go run ./bench/controlplane -n $(N) $(BENCH_FLAGS)

##@ Demo

# KEEP=1 leaves the demo running until Ctrl-C and prints how to play with it.
KEEP ?=
DEMO_FLAGS = $(if $(filter 1 true yes,$(KEEP)),-keep)

.PHONY: demo
demo: build envtest postgres redis ## Run popconnect end to end on a local control plane (KEEP=1 leaves it up).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" POSTGRES_BIN="$(POSTGRES_BIN)" REDIS_SERVER="$(REDIS_SERVER)" go run ./hack/demo $(DEMO_FLAGS)

##@ Docs

.PHONY: api-docs
api-docs: ## Generate docs/api.md, the API reference, from the Go types in api/v1alpha1.
	go run ./hack/apidocs -o docs/api.md
