// Package statusapi serves the status function's HTTP routes: executor
// status reports (POST /api/v2/pipeline/{id}/status) and status badges.
//
// Badges are public routes: mount them beside the API, which sits behind
// the API token. A private project's badge still takes a token, as the
// circle-token query parameter:
//
//	badges := &statusapi.Badges{Projects: store, Pipelines: store, Auth: auth, Log: log}
//	mux.Handle("/gh/", badges.Handler())
//	mux.Handle("/bb/", badges.Handler())
//
// A README then shows the default branch's state with
//
//	![forgelink](https://ci.example.com/gh/octo-org/hello-world.svg)
//
// and a branch's with .../hello-world/tree/feature%2Fx.svg; ?style=shield
// gives shields.io endpoint JSON instead of the SVG.
package statusapi
