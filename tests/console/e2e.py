"""The console as support staff use it, in headless Chromium: sign in with a
token, open the failed tenant, click Retry, see the tenant become active.

Run by tests/it/console.rs with the venv of deploy/browser.sh. Inputs come
from the environment:
  CONSOLE_URL      http://127.0.0.1:PORT (the API serving /console)
  CONSOLE_TOKEN    an API token with system:*
  CONSOLE_TENANT   the tenant whose provisioning failed
  LANDLORD_CHROMIUM  the browser binary (Debian's chromium)
  CONSOLE_SCREENSHOT optional PNG path: the failed tenant's timeline
Prints one JSON line per milestone; exits non-zero on any failure.
"""

import json
import os
import sys

from playwright.sync_api import expect, sync_playwright

base = os.environ["CONSOLE_URL"].rstrip("/")
token = os.environ["CONSOLE_TOKEN"]
tenant = os.environ["CONSOLE_TENANT"]
shot = os.environ.get("CONSOLE_SCREENSHOT")


def say(**kv):
    print(json.dumps(kv), flush=True)


with sync_playwright() as p:
    # The distro's chromium, not a Playwright download; --no-sandbox because
    # tests run as root in containers, where Chromium's sandbox cannot start.
    browser = p.chromium.launch(
        executable_path=os.environ["LANDLORD_CHROMIUM"],
        args=["--no-sandbox", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console", lambda m: errors.append(m.text) if m.type == "error" else None
    )

    page.goto(base + "/console")
    # A wrong token is refused and the form stays.
    page.fill("#token", "ll_not-a-real-token")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).not_to_be_empty()
    expect(page.locator("#app")).to_be_hidden()
    errors.clear()  # the refused request's 401 is logged by the browser
    say(step="wrong token refused")

    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    say(step="signed in")

    # Failed runs come first, in their own list.
    failed_row = page.locator(f'#failed tr[data-tenant="{tenant}"]')
    expect(failed_row).to_be_visible()
    failed_row.click()
    expect(page.locator("#d-name")).to_have_text(tenant)
    expect(page.locator("#d-run-status")).to_have_text("failed")
    # The plan the run stored when it was created.
    expect(page.locator("#d-plan")).to_contain_text("plan enterprise · tier enterprise (silo)")
    failed_step = page.locator('#d-steps li[data-status="failed"]')
    expect(failed_step).to_have_count(1)
    expect(failed_step.locator(".e")).not_to_be_empty()
    expect(page.locator("#retry")).to_be_enabled()
    expect(page.locator("#rollback")).to_be_enabled()
    say(
        step="opened failed tenant",
        status=page.inner_text("#d-status"),
        failed_step=failed_step.get_attribute("data-step"),
        error=failed_step.locator(".e").inner_text(),
    )
    if shot:
        page.screenshot(path=shot, full_page=True)
        say(step="screenshot", path=shot)

    page.click("#retry")
    expect(page.locator("#d-status")).to_have_text("active", timeout=90_000)
    expect(page.locator("#d-run-status")).to_have_text("completed")
    expect(page.locator('#d-steps li[data-status="failed"]')).to_have_count(0)
    expect(page.locator("#retry")).to_be_disabled()
    say(step="active after retry")

    # The lists follow: no failed run left for the tenant.
    expect(page.locator(f'#failed tr[data-tenant="{tenant}"]')).to_have_count(0)
    # Session-scoped token: signing out forgets it.
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('landlord.token')") is None
    say(step="signed out")
    browser.close()

if errors:
    say(step="page errors", errors=errors)
    sys.exit(1)
say(step="ok")
