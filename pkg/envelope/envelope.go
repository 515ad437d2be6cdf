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
	HdrProvider        = "Leadstream-Provider"
	HdrTenant          = "Leadstream-Tenant"
	HdrKind            = "Leadstream-Kind"
	HdrEventID         = "Leadstream-Event-Id"
	HdrProviderEventID = "Leadstream-Provider-Event-Id"
	HdrReceivedAt      = "Leadstream-Received-At"
	HdrMethod          = "Leadstream-Method"
	HdrPath            = "Leadstream-Path"
	HdrKeyID           = "Leadstream-Key-Id"
	HdrContentType     = "Leadstream-Content-Type"
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
	set(HdrProvider, r.Provider)
	set(HdrTenant, r.Tenant)
	set(HdrKind, r.Kind)
	set(HdrEventID, r.EventID)
	set(HdrProviderEventID, r.ProviderEventID)
	set(HdrReceivedAt, strconv.FormatInt(r.ReceivedAt.UnixNano(), 10))
	set(HdrMethod, r.Method)
	set(HdrPath, r.Path)
	set(HdrKeyID, r.KeyID)
	set(HdrContentType, r.ContentType)
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
		Provider:        get(HdrProvider),
		Tenant:          get(HdrTenant),
		Kind:            get(HdrKind),
		EventID:         get(HdrEventID),
		ProviderEventID: get(HdrProviderEventID),
		Method:          get(HdrMethod),
		Path:            get(HdrPath),
		KeyID:           get(HdrKeyID),
		ContentType:     get(HdrContentType),
		Signature:       http.Header{},
		Body:            m.Data,
	}
	for _, k := range SignatureHeaders {
		if v := get(HdrSigPrefix + k); v != "" {
			r.Signature.Set(k, v)
		}
	}
	if r.Source == "" || r.Provider == "" || r.EventID == "" {
		return nil, fmt.Errorf("raw envelope: missing %s, %s or %s header", HdrSource, HdrProvider, HdrEventID)
	}
	ns, err := strconv.ParseInt(get(HdrReceivedAt), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("raw envelope: bad %s header: %w", HdrReceivedAt, err)
	}
	r.ReceivedAt = time.Unix(0, ns).UTC()
	return r, nil
}
