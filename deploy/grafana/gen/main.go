// Command gen writes leadstream's Grafana dashboard (package grafana) as
// JSON to standard output: `make dashboards` runs it.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/leadstream/leadstream/deploy/grafana"
)

func main() {
	d, err := grafana.Dashboard()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
