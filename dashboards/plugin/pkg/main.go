// Command gpx_crmpulse is the backend of the CRM Pulse Grafana data source
// (dashboards/plugin/README.md): Grafana starts it and talks to it over
// gRPC.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/crmpulse/crmpulse/dashboards/plugin/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.ID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("crmpulse data source stopped", "err", err.Error())
		os.Exit(1)
	}
}
