package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
)

// chromiumPath finds Debian's chromium: $CHROMIUM, else chromium or
// chromium-browser on PATH (`make chromium` installs it where apt-get
// exists).
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither chromium nor chromium-browser is on PATH and CHROMIUM is not set")
}

const browserToken = "browser-test-token-0123456789"

// TestConsoleInBrowser is an operator's session in a real browser against
// `leadstream run`: the sources page counts what arrived and refused, the
// event list finds the signed samples and links their traces, a bid the LMS
// refused is in DLQ, its replay is refused until the operator signs in,
// and once the LMS takes bids again the replay delivers it; a normalizer's
// letter is dropped through the confirmation page (no JavaScript needed);
// a lead's personal fields are masked until revealed. Screenshots of each
// page go to $LEADSTREAM_SCREENSHOTS, else a temporary directory.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary and a browser")
	}
	browser, err := chromiumPath()
	if err != nil {
		t.Skipf("the console's browser test needs Debian's chromium (`make chromium` installs it with apt-get): %v", err)
	}
	shots := os.Getenv("LEADSTREAM_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	lms.reject = "bid.placed"
	consoleAddr := natstest.FreeAddr(t)
	d, ids := runSamples(t, bin, fmt.Sprintf("dispatcher: {max_park: 10m}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\nconsole: {listen: %q, token: %q}\n",
		lms.srv.URL, lmsSecret, consoleAddr, browserToken))
	base := "http://" + consoleAddr
	// One webhook with a wrong signature, for the sources page to count.
	forged, err := http.NewRequest(http.MethodPost, d.url+"/hooks/mp-api", strings.NewReader(`{"id":"forged"}`))
	if err != nil {
		t.Fatal(err)
	}
	forged.Header.Set("X-Ecg-Signature", strings.Repeat("00", 32))
	resp, err := http.DefaultClient.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a forged webhook: %d", resp.StatusCode)
	}
	nc, js, err := natsconn.Connect("nats://"+d.natsAddr, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("starting %s: %v", browser, err)
	}
	// htmx asks with confirm() before an action: the operator says yes.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// until reloads url until the text of sel satisfies ok.
	until := func(url, sel string, ok func(string) error) string {
		t.Helper()
		var s string
		natstest.CheckFor(t, 45*time.Second, 250*time.Millisecond, func() error {
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			defer scancel()
			if err := chromedp.Do(sctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS(sel))); err != nil {
				return err
			}
			var err error
			if s, err = chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel))); err != nil {
				return err
			}
			return ok(s)
		})
		return s
	}
	shot := func(name string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// waitURL waits until the page's URL holds part: a submitted form's
	// page has replaced the one it was on.
	waitURL := func(part string) {
		t.Helper()
		natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil || !strings.Contains(loc, part) {
				return fmt.Errorf("at %s (%v), waiting for %s", loc, err, part)
			}
			return nil
		})
	}
	contains := func(want ...string) func(string) error {
		return func(s string) error {
			for _, w := range want {
				if !strings.Contains(s, w) {
					return fmt.Errorf("page lacks %q:\n%s", w, s)
				}
			}
			return nil
		}
	}
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get(base + "/sources")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("console: %d", resp.StatusCode)
		}
		return nil
	})

	// Sources: every sample arrived; the forged one failed verification.
	sources := until(base+"/sources", "#sources table", contains("mp-leads", "bad_signature 1"))
	if regexp.MustCompile(`mp-leads\s.*never`).MatchString(sources) {
		t.Errorf("mp-leads never accepted a webhook, says the page:\n%s", sources)
	}
	shot("sources")

	// Events: search by type, find the Marktplaats lead, open its trace.
	lead := ids["marktplaats-lms/lead"]
	do("searching events", chromedp.Navigate(base+"/events"), chromedp.SendKeys(chromedp.CSS(`input[name="type"]`), "lead.created"),
		chromedp.Submit(chromedp.CSS(`input[name="type"]`)))
	waitURL("type=lead.created")
	do("searching events", chromedp.WaitVisible(chromedp.ID("events")))
	if found := text("#events"); !strings.Contains(found, lead) || strings.Contains(found, "bid.placed") {
		t.Fatalf("searching lead.created: lead %s not listed, or other types are:\n%s", lead, found)
	}
	shot("events")
	do("listing every event", chromedp.Navigate(base+"/events"), chromedp.WaitVisible(chromedp.ID("events")))
	shot("events-all") // docs/console.png
	do("opening the trace", chromedp.Click(chromedp.CSS(`#events a[href="/trace/`+lead+`"]`)), chromedp.WaitVisible(chromedp.ID("trace")))
	until(base+"/trace/"+lead, "#trace", contains("lead.created", "adapter crm", "delivered", "5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10"))
	shot("trace")

	// DLQ: the bid the LMS refused.
	letters := until(base+"/dlq?stage=deliver", "#letters", contains("terminal", "crm"))
	seq := regexp.MustCompile(`\n(\d+)\s+deliver`).FindStringSubmatch("\n" + letters)[1]
	letterURL := base + "/dlq/" + seq
	do("opening the letter", chromedp.Navigate(letterURL), chromedp.WaitVisible(chromedp.ID("replay")))
	shot("dead-letter")

	// Replay without signing in: refused, nothing delivered, the letter stays.
	lms.mu.Lock()
	lms.reject = ""
	lms.mu.Unlock()
	do("replay before signing in", chromedp.Click(chromedp.ID("replay")), chromedp.WaitVisible(chromedp.ID("refused")))
	if s := text("#refused"); !strings.Contains(s, "Refused") {
		t.Errorf("the refusal says %q", s)
	}
	if slices.Contains(lms.typesSeen(), "bid.placed") {
		t.Fatal("a replay without the token reached the LMS")
	}
	var dlqSeq uint64
	fmt.Sscan(seq, &dlqSeq)
	if _, err := dlq.Get(context.Background(), js, dlqSeq); err != nil {
		t.Fatalf("the letter is gone after a refused replay: %v", err)
	}

	// Sign in with the token; back on the letter, replay it.
	do("signing in", chromedp.SendKeys(chromedp.ID("token"), browserToken), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("replay")))
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != letterURL {
		t.Errorf("after signing in the browser is at %s (%v), not back at the letter %s", loc, err, letterURL)
	}
	do("replaying", chromedp.Click(chromedp.ID("replay")), chromedp.WaitVisible(chromedp.ID("done")))
	if s := text("#done"); !strings.Contains(s, "Dead letter "+seq+" replayed") {
		t.Errorf("after the replay the page says %q", s)
	}
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if !slices.Contains(lms.typesSeen(), "bid.placed") {
			return fmt.Errorf("the replayed bid.placed is not at the LMS: %v", lms.typesSeen())
		}
		return nil
	})
	if _, err := dlq.Get(context.Background(), js, dlqSeq); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("the replayed letter is still in DLQ: %v", err)
	}
	shot("dlq-replayed")
	until(base+"/trace/"+ids["marktplaats-api/bid-placed"], "#trace", contains("bid.placed", "adapter crm", "delivered"))

	// The normalizer's letter (the doc example), dropped through the
	// confirmation page: a plain form, no JavaScript.
	letters = until(base+"/dlq?stage=normalize", "#letters", contains("unsupported_type"))
	seq = regexp.MustCompile(`\n(\d+)\s+normalize`).FindStringSubmatch("\n" + letters)[1]
	do("dropping", chromedp.Navigate(base+"/dlq/"+seq+"/drop"), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("done")))
	if s := text("#done"); !strings.Contains(s, "Dead letter "+seq+" dropped") {
		t.Errorf("after the drop the page says %q", s)
	}
	if s := text("main"); !strings.Contains(s, "no dead letter") {
		t.Errorf("DLQ still lists letters after the replay and the drop:\n%s", s)
	}

	// The lead: personal fields masked, revealed on request.
	aggregate := "mp-leads/conversation/c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394"
	fields := until(base+"/leads/"+aggregate, "#fields", contains("lead.buyer.name", "J*** d*** V***", "j***@e***.nl"))
	if strings.Contains(fields, "Jan de Vries") || strings.Contains(fields, "jan.devries@example.nl") || strings.Contains(fields, "+31612345678") {
		t.Errorf("the lead page shows personal fields before a reveal:\n%s", fields)
	}
	shot("lead")
	do("revealing", chromedp.Click(chromedp.ID("reveal")), chromedp.WaitVisible(chromedp.ID("revealed")))
	if s := text("#fields"); !strings.Contains(s, "Jan de Vries") || !strings.Contains(s, "jan.devries@example.nl") {
		t.Errorf("the revealed lead page lacks the buyer:\n%s", s)
	}

	until(base+"/adapters", "#adapters table", contains("crm", "closed"))
	shot("adapters")
	t.Logf("screenshots in %s", shots)
}
