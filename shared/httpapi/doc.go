// Package httpapi holds forgelink's HTTP handlers: one http.Handler per HTTP
// function (webhook intake, projects and keys), each a plain net/http value
// that Lambda serves through aws-lambda-go-api-proxy and the one-process
// server mounts directly.
//
//	intake := &httpapi.Intake{Store: st, Sealer: sl, Queue: q}
//	mux.Handle("/hooks/", intake.Handler())
//
// Every error answers JSON {"message": "..."} with a status chosen from the
// error's forgelink.Kind in one table (see writeError); internal errors never
// reach the client verbatim.
package httpapi
