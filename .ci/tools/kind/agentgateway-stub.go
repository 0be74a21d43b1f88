// Package agentgateway, as the kind tier's istiod is built: Istio's experimental
// agentgateway controller (PILOT_ENABLE_AGENTGATEWAY, off by default) needs the module
// github.com/agentgateway/agentgateway/api, which the Go module proxy does not serve.
// This stand-in keeps the package's API so istiod compiles; enabling the feature in the
// tier's istiod stops it with a clear message. Copied over the package by binaries.sh.
package agentgateway

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/serviceregistry/kube/controller"
	"istio.io/istio/pilot/pkg/status"
	"istio.io/istio/pilot/pkg/xds"
	"istio.io/istio/pkg/kube"
)

// Controller is never constructed in the tier's istiod.
type Controller struct {
	model.AgentgatewayController
	Registrations []xds.Registration
}

// NewAgwController refuses: the feature is not built in.
func NewAgwController(
	_ kube.Client,
	_ func(class schema.GroupVersionResource, stop <-chan struct{}) bool,
	_ controller.Options,
) *Controller {
	panic("PILOT_ENABLE_AGENTGATEWAY: the kind tier's istiod is built without agentgateway " +
		"(github.com/agentgateway/agentgateway/api is not served by the Go module proxy)")
}

// SetStatusWrite is never reached (see NewAgwController).
func (c *Controller) SetStatusWrite(bool, *status.Manager) {}
