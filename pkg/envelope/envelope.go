// Package envelope defines the RAW stream's message: the exact webhook body
// as received plus the metadata the edge adds as NATS headers, so that a
// consumer or a replay can tell where it came from and re-verify it.
package envelope

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/pkg/config"
)

// RAW header names. The body of a RAW message is the request body, byte for byte.
const (
	HdrSource          = "Leadstream-Source"
	hdrProvider        = "Leadstream-Provider"
	hdrTenant          = "Leadstream-Tenant"
	HdrKind            = "Leadstream-Kind"
	HdrEventID         = "Leadstream-Event-Id"
	HdrProviderEventID = "Leadstream-Provider-Event-Id"
	hdrReceivedAt      = "Leadstream-Received-At"
	hdrMethod          = "Leadstream-Method"
	HdrPath            = "Leadstream-Path"
	hdrKeyID           = "Leadstream-Key-Id"
	hdrContentType     = "Leadstream-Content-Type"
	// HdrSigPrefix prefixes a copy of each provider signature header
	// (digest, signature, X-Ecg-Signature, ...), so a replay can re-verify.
	HdrSigPrefix = "Leadstream-Sig-"
)

// SignatureHeaders are the request headers copied into RAW: everything any
// provider's signature covers. Tokens are never copied.
var SignatureHeaders = []string{config.HeaderDigest, config.HeaderSignature, config.HeaderEcgSignature, config.HeaderOfferteAdviseurSignature}

// Raw is one webhook request as stored in RAW.
type Raw struct {
	Source          string
	Provider        string
	Tenant          string
	Kind            string
	EventID         string // leadstream's deterministic event id
	ProviderEventID string // the provider's id, or the body hash when it sends none
	ReceivedAt      time.Time
	Method          string
	Path            string
	KeyID           string
	ContentType     string
	Signature       http.Header // the provider's signature headers, by their own names
	Body            []byte
}

// MsgID is the JetStream Nats-Msg-Id of a RAW message: the source and the
// provider's event id, so a provider's redelivery is a JetStream duplicate.
func (r *Raw) MsgID() string { return r.Source + ":" + r.ProviderEventID }

// Subject is the RAW subject raw.<provider>.<kind>.<source>.
func (r *Raw) Subject() string { return "raw." + r.Provider + "." + r.Kind + "." + r.Source }

// Msg encodes r as a NATS message ready to publish.
func (r *Raw) Msg() *nats.Msg {
	h := make(nats.Header, 16)
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{v}
		}
	}
	set(nats.MsgIdHdr, r.MsgID())
	set(HdrSource, r.Source)
	set(hdrProvider, r.Provider)
	set(hdrTenant, r.Tenant)
	set(HdrKind, r.Kind)
	set(HdrEventID, r.EventID)
	set(HdrProviderEventID, r.ProviderEventID)
	set(hdrReceivedAt, strconv.FormatInt(r.ReceivedAt.UnixNano(), 10))
	set(hdrMethod, r.Method)
	set(HdrPath, r.Path)
	set(hdrKeyID, r.KeyID)
	set(hdrContentType, r.ContentType)
	for k, vs := range r.Signature {
		if len(vs) > 0 {
			set(HdrSigPrefix+k, vs[0])
		}
	}
	return &nats.Msg{Subject: r.Subject(), Header: h, Data: r.Body}
}

// FromMsg decodes a RAW message. It fails only when the headers every RAW
// message carries are missing.
func FromMsg(m *nats.Msg) (*Raw, error) {
	get := m.Header.Get
	r := &Raw{
		Source:          get(HdrSource),
		Provider:        get(hdrProvider),
		Tenant:          get(hdrTenant),
		Kind:            get(HdrKind),
		EventID:         get(HdrEventID),
		ProviderEventID: get(HdrProviderEventID),
		Method:          get(hdrMethod),
		Path:            get(HdrPath),
		KeyID:           get(hdrKeyID),
		ContentType:     get(hdrContentType),
		Signature:       http.Header{},
		Body:            m.Data,
	}
	for _, k := range SignatureHeaders {
		if v := get(HdrSigPrefix + k); v != "" {
			r.Signature.Set(k, v)
		}
	}
	if r.Source == "" || r.Provider == "" || r.EventID == "" {
		return nil, fmt.Errorf("raw envelope: missing %s, %s or %s header", HdrSource, hdrProvider, HdrEventID)
	}
	ns, err := strconv.ParseInt(get(hdrReceivedAt), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("raw envelope: bad %s header: %w", hdrReceivedAt, err)
	}
	r.ReceivedAt = time.Unix(0, ns).UTC()
	return r, nil
}
