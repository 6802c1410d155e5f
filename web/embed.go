// Package web holds fabu's single-page app. The Vue sources live beside this file; `npm run
// build` writes dist/, which is embedded into the fabu binary.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the built SPA (the contents of dist/). It holds only .keep until the SPA has
// been built with `make web`.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at compile time; Sub of a fixed name cannot fail
	}
	return sub
}
