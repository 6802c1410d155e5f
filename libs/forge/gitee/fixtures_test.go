package gitee

import "net/http"

// canonical returns h with canonical keys, as net/http hands them to a handler.
func canonical(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	return out
}
