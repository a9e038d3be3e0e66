// Package browser holds the settings pages' browser test: Debian's
// headless Chromium, driven from Go with chromedp, against the one-process
// server (infra/local/server behind httptest) and the fake GitHub. It signs
// in with the API token, follows a repository, adds a deploy key, pastes an
// RSA PEM key, ticks "Only build pull requests", checks each result on the
// page and in the store, and saves a PNG of every page under
// testdata/screenshots/ (ignored by git; FORGELINK_SCREENSHOTS names
// another directory).
//
//	go test ./infra/local/browser/
//
// Chromium must be installed (apt-get install chromium, as .ci/run does):
// without it the test fails, it does not skip. CHROMIUM names another
// binary.
package browser
