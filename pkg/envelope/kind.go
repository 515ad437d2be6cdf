package envelope

// Event kinds: the third token of a RAW subject and the second of an EVENTS
// subject. KindUnknown marks an authentic body the edge could not classify;
// it is stored all the same and dead-lettered by the normalizer with a reason.
const (
	KindLead        = "lead"
	KindChat        = "chat"
	KindBid         = "bid"
	KindASQ         = "asq"
	KindTransaction = "transaction"
	KindCall        = "call"
	KindEnquiry     = "enquiry"
	KindInvoice     = "invoice"
	KindUnknown     = "unknown"
)

// Kinds lists every kind a normalizer consumes, KindUnknown last.
var Kinds = []string{KindLead, KindChat, KindBid, KindASQ, KindTransaction, KindCall, KindEnquiry, KindInvoice, KindUnknown}
