// CoreDNS with only the plugins the dev cluster's Corefile uses (hack/devcluster.py writes it):
// the upstream binary links every plugin, including cloud SDKs, which multiplies the build time
// for nothing. The plugins register themselves in init; coremain parses the Corefile.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
