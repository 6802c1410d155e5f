package clienttest

import (
	"net/http"
	"reflect"
	"strconv"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/libs/apperr"
)

// apply upserts by name like the gateway: every project's servers must name a server that
// exists or is in the same document, and nothing is stored unless all of it is valid.
func (g *Gateway) apply(w http.ResponseWriter, r *http.Request) {
	var doc client.ApplyDoc
	if !decode(w, r, &doc) {
		return
	}
	if doc.Servers == nil || doc.Projects == nil {
		writeErr(w, apperr.Invalid("servers and projects must be lists"))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	known := map[string]bool{}
	for _, s := range g.servers {
		known[s.Name] = true
	}
	for _, s := range doc.Servers {
		known[s.Name] = true
	}
	for _, p := range doc.Projects {
		for _, name := range p.Servers {
			if !known[name] {
				writeErr(w, apperr.Invalid("project %q: no server named %q", p.Name, name))
				return
			}
		}
	}
	g.applied = append(g.applied, doc)
	res := client.ApplyResult{Servers: []client.ApplyItem{}, Projects: []client.ApplyItem{}}
	for _, s := range doc.Servers {
		res.Servers = append(res.Servers, client.ApplyItem{Name: s.Name, Action: g.upsertServer(s)})
	}
	for _, p := range doc.Projects {
		res.Projects = append(res.Projects, client.ApplyItem{Name: p.Name, Action: g.upsertProject(p)})
	}
	writeJSON(w, http.StatusOK, res)
}

func (g *Gateway) upsertServer(s client.ServerSpec) string {
	for i := range g.servers {
		if g.servers[i].Name == s.Name {
			if reflect.DeepEqual(g.servers[i], s) {
				return client.ActionUnchanged
			}
			g.servers[i] = s
			return client.ActionUpdated
		}
	}
	g.servers = append(g.servers, s)
	return client.ActionCreated
}

func (g *Gateway) upsertProject(p client.ProjectSpec) string {
	for _, have := range g.projects {
		if have.Name == p.Name {
			if reflect.DeepEqual(have.ProjectSpec, p) {
				return client.ActionUnchanged
			}
			have.ProjectSpec = p
			return client.ActionUpdated
		}
	}
	g.nextID++
	g.projects = append(g.projects, &project{ProjectSpec: p, id: "prj-" + strconv.Itoa(g.nextID)})
	return client.ActionCreated
}
