package cmrunner

import (
	"fmt"

	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"
	crapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// The issuer implementations register themselves in pkg/issuer's
	// registry from init. The Issuer/ClusterIssuer controllers look issuers
	// up there by type ("issuer 'ca' not registered" otherwise), and the
	// certificaterequests controllers do too when signing.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// controllerNames lists the cert-manager controllers the runner starts: the
// Certificate pipeline (trigger -> keymanager -> requestmanager ->
// certificaterequests approval and signing -> issuing -> readiness, plus
// revisionmanager to prune old CertificateRequests), and the Issuer and
// ClusterIssuer controllers that set issuers Ready. Referencing each
// package's ControllerName both documents the choice and links the package,
// whose init registers the constructor in cmcontroller.Known().
//
// Left out on purpose: ACME (orders, challenges), Vault and Venafi issuers,
// the ingress/gateway shims, certificatesigningrequests (behind an alpha
// feature gate) and the metrics controller.
func controllerNames() []string {
	return []string{
		trigger.ControllerName,
		keymanager.ControllerName,
		requestmanager.ControllerName,
		issuing.ControllerName,
		readiness.ControllerName,
		revisionmanager.ControllerName,
		crapprover.ControllerName,
		crselfsigned.CRControllerName,
		crca.CRControllerName,
		issuers.ControllerName,
		clusterissuers.ControllerName,
	}
}

type namedController struct {
	name string
	new  cmcontroller.Constructor
}

// constructors looks the controllers up in cert-manager's registry, failing
// if any is missing (e.g. a renamed controller after a cert-manager upgrade)
// instead of silently running without it.
func constructors() ([]namedController, error) {
	known := cmcontroller.Known()
	out := make([]namedController, 0, len(controllerNames()))
	for _, name := range controllerNames() {
		fn, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("cert-manager controller %q is not registered", name)
		}
		out = append(out, namedController{name: name, new: fn})
	}
	return out, nil
}
