# One image for every leadstream service: the static leadstream binary on an empty base, run as
# a non-root user, with no shell and no secrets (config and keys are mounted at run time).
#   docker build -t leadstream .        (docker compose up builds it too)
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.work go.work.sum ./
COPY cmd/bench/go.mod cmd/bench/go.sum cmd/bench/
COPY cmd/leadstream/go.mod cmd/leadstream/go.sum cmd/leadstream/
COPY deploy/go.mod deploy/go.sum deploy/
COPY pkg/go.mod pkg/go.sum pkg/
COPY proto/go.mod proto/go.sum proto/
COPY services/dispatcher/go.mod services/dispatcher/go.sum services/dispatcher/
COPY services/edge/go.mod services/edge/go.sum services/edge/
COPY services/normalizer/go.mod services/normalizer/go.sum services/normalizer/
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/leadstream ./cmd/leadstream

FROM scratch
# CA certificates for HTTPS webhooks to the LMSs.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/leadstream /leadstream
USER 65532:65532
# edge, normalizer admin, dispatcher admin, demo LMS
EXPOSE 8080 9090 9091 9000
ENTRYPOINT ["/leadstream"]
