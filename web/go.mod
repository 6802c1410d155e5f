module fabu.dev/web

go 1.26.8
