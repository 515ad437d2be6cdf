module github.com/leadstream/leadstream/cmd/leadstream

go 1.26.8
