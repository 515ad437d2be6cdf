package leads

import (
	"strings"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// typeStatus is the status an event of a type sets, where the type alone
// says it. Ranks only compare within one aggregate, so each family has its
// own scale (see Status).
var typeStatus = map[string]Status{
	"lead.created":    {Value: "CREATED", Rank: 1},
	"lead.sold":       {Value: "SOLD", Rank: 2},
	"lead.invoiced":   {Value: "INVOICED", Rank: 3},
	"lead.paid":       {Value: "PAID", Rank: 4},
	"invoice.created": {Value: "CREATED", Rank: 1},
	"invoice.paid":    {Value: "PAID", Rank: 2},
	"asq.created":     {Value: "RECEIVED", Rank: 1},
	"bid.placed":      {Value: "PLACED", Rank: 2},
	"bid.closed":      {Value: "CLOSED", Rank: 3},
	"call.completed":  {Value: "RECEIVED", Rank: 1},
	"call.sms":        {Value: "RECEIVED", Rank: 1},
	"call.incoming":   {Value: "RECEIVED", Rank: 1},
	"enquiry.created": {Value: "RECEIVED", Rank: 1},
}

// transactionRank orders Marktplaats transaction statuses: terminal outcomes
// above PENDING, and refunds and chargebacks (which follow a completion)
// above those.
var transactionRank = map[leadstreamv1.TransactionStatus]int{
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED:    1,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING:    2,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_EXPIRED:    3,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CANCELLED:  3,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED:  3,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_FAILED:     3,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_REFUNDED:   4,
	leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CHARGEBACK: 4,
}

// statuses are the statuses ev vouches for, without time and event id. A
// transaction change vouches for its new status and for its old one: a
// change PENDING -> COMPLETED proves the transaction was at least PENDING
// even if the change to PENDING never arrives.
func statuses(ev *leadstreamv1.Event) []Status {
	if tx := ev.GetTransaction(); tx != nil {
		var out []Status
		for _, ts := range []leadstreamv1.TransactionStatus{tx.GetOldStatus(), tx.GetNewStatus()} {
			if rank, ok := transactionRank[ts]; ok {
				out = append(out, Status{
					Value: strings.TrimPrefix(ts.String(), "TRANSACTION_STATUS_"),
					Rank:  rank,
				})
			}
		}
		return out
	}
	if st, ok := typeStatus[ev.GetType()]; ok {
		return []Status{st}
	}
	return nil
}
