// End to end: the real app binary in a real window (Xvfb), driven through tauri-driver and
// WebKitWebDriver, in demo mode. Asserts what a person sees and saves screenshots.
//
//   node tests/e2e/wizard.e2e.mjs            (run by scripts/test.sh under xvfb-run)
//
// ENTRA_SETUP_APP: the app binary (default: <cargo target dir>/debug/entra-setup)
// E2E_OUT: where screenshots go (default: target/e2e)
import { spawn } from "node:child_process";
import { mkdirSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { remote } from "webdriverio";
import { axeCheck, axeTotals } from "./axe.mjs";
import { appEnv, freePort, painted, publish } from "./support.mjs";

const root = resolve(import.meta.dirname, "../..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const app = process.env.ENTRA_SETUP_APP ?? join(targetDir, "debug", "entra-setup-desktop");
const out = process.env.E2E_OUT ?? join(root, "target", "e2e");
mkdirSync(out, { recursive: true });
assert.ok(existsSync(app), `app binary not found at ${app}; build it with --features custom-protocol`);

const env = appEnv("entra-setup-e2e-");
/** SCIMMY (npm) as the provider's SCIM endpoint: an independent server the demo provisions to. */
const SCIM_TOKEN = "e2e-scim-token-4b1c9e";
async function startScimmy() {
  const child = spawn("node", [join(root, "tests/scim/scimmy-server.mjs"), "0", SCIM_TOKEN], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((ok, fail) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/READY (\S+)/);
      if (m) ok(m[1]);
    });
    child.once("exit", (code) => fail(new Error(`the SCIM server exited (${code})`)));
  });
  return { url, child };
}
const scimmy = await startScimmy();
process.on("exit", () => scimmy.child.kill());

const port = await freePort();
const nativePort = await freePort();
// The demo tenant listens here, so the test can make it as hard as Entra (realistic faults) and
// ask the Cloudflare stand-in which secret it was given. The waits between retries are shortened
// (the simulator needs no minutes to replicate); Retry-After is still honoured.
const demoPort = await freePort();
env.ENTRA_SETUP_DEMO_PORT = String(demoPort);
env.ENTRA_SETUP_RETRY_MS = "50";
const demo = `http://127.0.0.1:${demoPort}`;
/** Throttling, replication delays, late secrets and roles, lost answers: Entra on a busy day. */
async function realisticFaults() {
  const r = await fetch(`${demo}/_sim/faults/realistic`, { method: "POST" });
  assert.equal(r.status, 204, "the demo tenant takes the realistic faults");
  const faults = await (await fetch(`${demo}/_sim/faults`)).json();
  assert.ok(faults.throttleEvery > 0 && faults.replicationMs > 0 && faults.loseResponses.length > 0, JSON.stringify(faults));
}
const CF_ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353";
/** The key id of the secret the first push carried. */
let firstPushKey = null;
/** Which of the Entra app's secrets the Cloudflare stand-in holds, and whether it is still on the app. */
async function pushedSecret() {
  const headers = { authorization: "Bearer demo-token-0123456789abcdef" };
  const base = `${demo}/_fake/cloudflare/client/v4/accounts/${CF_ACCOUNT}/access/identity_providers`;
  const list = await (await fetch(base, { headers })).json();
  assert.equal(list.result.length, 1, "one identity provider, updated in place");
  assert.equal(list.result[0].config.client_secret, undefined, "the stand-in never returns the secret");
  return (await (await fetch(`${base}/${list.result[0].id}/entra_check`, { headers })).json()).result;
}
// Its own process group, so WebKitWebDriver goes with it when the test ends.
const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], { env, stdio: ["ignore", "inherit", "inherit"], detached: true });
const stopDriver = () => {
  try {
    process.kill(-driver.pid, "SIGTERM");
  } catch {}
};
process.on("exit", stopDriver);
let browser;

async function waitForDriver() {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/status`);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

async function shot(name, scrollTo) {
  if (scrollTo) await browser.execute((sel) => document.querySelector(sel)?.scrollIntoView({ block: "start" }), scrollTo);
  await browser.pause(300);
  if (!(await painted(browser))) console.log(`  (no animation frame within a second before ${name}.png)`);
  const file = join(out, `${name}.png`);
  await browser.saveScreenshot(file);
  console.log(`  screenshot ${name}.png`);
  publish(name, file);
  await axeCheck(browser, name);
  await overflowCheck(name);
}

/** Content wider than the page (clipped, or a sideways scrollbar), or a window that scrolls
 * itself, at the default window size (1120×780) and at 1440×900; the larger one is also saved
 * as a screenshot. */
async function overflowCheck(name) {
  const find = () =>
    browser.execute(() => {
      const main = document.querySelector("main");
      const edge = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight) + 1;
      const bad = [];
      if (main.scrollWidth > main.clientWidth + 1) bad.push(`main scrolls sideways (${main.scrollWidth} > ${main.clientWidth})`);
      // Only the step and the rail scroll: the window itself never does (the header stays).
      const page = document.scrollingElement;
      if (page.scrollHeight > page.clientHeight + 1 || page.scrollTop > 0) bad.push(`the window itself scrolls (${page.scrollHeight} > ${page.clientHeight}, at ${page.scrollTop})`);
      for (const el of main.querySelectorAll("*")) {
        const r = el.getBoundingClientRect();
        // Inside a container that scrolls or wraps on purpose (a long request, a table's scroller).
        if (el.closest("pre, .scroll-x")) continue;
        if (r.width > 0 && r.height > 0 && r.right > edge) bad.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className && typeof el.className === "string" ? `.${el.className.split(" ")[0]}` : ""} by ${Math.round(r.right - edge)} px: "${(el.textContent ?? "").trim().slice(0, 40)}"`);
      }
      return bad.slice(0, 5);
    });
  const small = await find();
  assert.deepEqual(small, [], `content overflows at 1120×780 on ${name}`);
  const { width, height } = await browser.getWindowSize();
  await browser.setWindowSize(1440, 900);
  await browser.pause(200);
  const large = await find();
  await browser.saveScreenshot(join(out, `${name}@1440.png`));
  await browser.setWindowSize(width, height);
  await browser.pause(100);
  assert.deepEqual(large, [], `content overflows at 1440×900 on ${name}`);
}

/** Picks a service on Choose service. The list may still be settling after the step appears (a
 * re-render can swallow a click), so it clicks until the choice holds and its form is there. */
async function chooseService(label, firstInput) {
  const choice = await browser.$(`//label[contains(., ${JSON.stringify(label)})]//input`);
  await choice.waitForExist({ timeout: 10000 });
  await browser.waitUntil(async () => {
    if (!(await choice.isSelected())) await choice.click().catch(() => {});
    return (await choice.isSelected()) && (await (await browser.$(firstInput)).isExisting());
  }, { timeout: 15000, interval: 500, timeoutMsg: `could not choose ${label}` });
}

const byText = (tag, text) => browser.$(`//${tag}[normalize-space()=${JSON.stringify(text)}]`);
const containsText = (text) => browser.$(`//*[contains(normalize-space(), ${JSON.stringify(text)}) and not(*[contains(normalize-space(), ${JSON.stringify(text)})])]`);

/** Waits until keyboard focus is on the element whose text is `text` (e.g. a new screen's heading). */
async function waitForFocusOn(text) {
  await browser.waitUntil(async () => (await browser.execute(() => document.activeElement?.textContent?.trim())) === text, {
    timeout: 5000,
    timeoutMsg: `focus did not move to "${text}"`,
  });
}

/** Moves the focus with Tab, as a keyboard user does, until `el` has it (at most 150 presses;
 * focus wraps from the last control to the first). Returns how many presses it took. */
async function tabTo(el, what) {
  for (let i = 0; i < 150; i++) {
    if (await browser.execute((e) => document.activeElement === e, el)) return i;
    await browser.keys("Tab");
  }
  throw new Error(`Tab never reached ${what}`);
}

/** Presses keys one at a time, as a person would. */
async function press(...keys) {
  for (const k of keys) {
    await browser.keys(k);
    await browser.pause(50);
  }
}

async function visibleText() {
  return browser.$("main").getText();
}

async function step(name, fn) {
  process.stdout.write(`- ${name}\n`);
  await fn();
}

try {
  await waitForDriver();
  browser = await remote({
    hostname: "127.0.0.1",
    port,
    logLevel: "warn",
    capabilities: { "tauri:options": { application: app }, "wdio:enforceWebDriverClassic": true },
  });

  await step("welcome screen offers sign-in and the demo; the rail lists all eight steps", async () => {
    const demo = await byText("button", "Try the demo tenant");
    await demo.waitForDisplayed({ timeout: 30000 });
    assert.ok(await (await byText("button", "Sign in to Microsoft Entra")).isDisplayed());
    const rail = await browser.$("nav[aria-label='Wizard steps']").getText();
    for (const s of ["Sign in", "Choose service", "Register app", "Permissions & consent", "Sync mode", "SCIM", "Review & apply", "Done"]) {
      assert.ok(rail.includes(s), `step rail lists ${s}`);
    }
    assert.ok(!rail.includes("Not built yet"), "every step is built");
    await shot("01-welcome");
  });

  await step("demo sign-in as a Global Administrator lands on the tenant summary", async () => {
    await (await byText("button", "Try the demo tenant")).click();
    await (await byText("h1", "Try the demo tenant")).waitForDisplayed();
    await shot("02-demo-picker");
    await (await byText("button", "Sign in to the demo tenant")).click();
    await (await byText("h1", "Contoso")).waitForDisplayed({ timeout: 30000 });
    const text = await visibleText();
    assert.ok(text.includes("adele@contoso.com"), "signed-in user shown");
    assert.ok(text.includes("Global Administrator"), "role shown");
    assert.match(await browser.$("[data-testid='licence']").getText(), /Entra ID P1/);
    assert.match(await browser.$("[data-testid='tenant-id']").getText(), /^[0-9a-f-]{36}$/);
    assert.ok(text.includes("Grant Microsoft Graph application permissions"));
    await shot("03-tenant-summary");
  });

  await step("a step reached too early says what comes first", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='SCIM']]")).click();
    await (await byText("h1", "SCIM")).waitForDisplayed();
    assert.ok((await visibleText()).includes("Choose in the Sync mode step"));
    await (await byText("button", "Back to Sync mode")).click();
    await (await byText("h1", "Sync mode")).waitForDisplayed();
    await (await browser.$("//nav//button[.//span[normalize-space()='Sign in']]")).click();
    await (await byText("h1", "Contoso")).waitForDisplayed();
  });

  await step("keyboard only: leave the demo, pick the Free tenant, sign in", async () => {
    await (await byText("button", "Leave the demo")).click();
    await (await byText("button", "Try the demo tenant")).waitForDisplayed();
    // Focus moves to the new screen's heading; Tab reaches the two buttons in order.
    await waitForFocusOn("Connect Microsoft Entra ID to your service");
    await press("Tab", "Tab");
    assert.equal(await browser.execute(() => document.activeElement?.textContent?.trim()), "Try the demo tenant");
    await press("Enter");
    await waitForFocusOn("Try the demo tenant");
    await press("Tab"); // the first demo user's radio
    await press("ArrowDown", "ArrowDown"); // Lee Gu, Fabrikam (Free)
    await press("Tab", "Tab"); // method group, then the submit button
    assert.equal(await browser.execute(() => document.activeElement?.textContent?.trim()), "Sign in to the demo tenant");
    await press("Enter");
    await (await byText("h1", "Fabrikam")).waitForDisplayed({ timeout: 30000 });
    assert.match(await browser.$("[data-testid='licence']").getText(), /Free/);
    assert.ok((await browser.$("[data-testid='capability-group_assignment']").getText()).includes("Assigned groups only needs Entra ID P1; this tenant is Free"));
    await shot("04-keyboard-free-tenant");
  });

  await step("device code in the demo: the code, a copy button and a countdown, then the summary", async () => {
    await (await byText("button", "Leave the demo")).click();
    await (await byText("button", "Try the demo tenant")).click();
    await (await browser.$("//label[contains(., 'isaiah@northwindtraders.com')]//input")).click();
    await (await browser.$("//label[contains(., 'Device code')]//input")).click();
    await (await byText("button", "Sign in to the demo tenant")).click();
    const code = await browser.$("[data-testid='device-code']");
    await code.waitForDisplayed({ timeout: 20000 });
    assert.match(await code.getText(), /^[A-Z0-9]{9}$/);
    assert.match(await browser.$("[data-testid='countdown']").getText(), /^1[45]:\d\d$/);
    assert.ok(await (await byText("button", "Copy code")).isDisplayed());
    await shot("05-device-code");
    await (await byText("h1", "Northwind Traders")).waitForDisplayed({ timeout: 30000 });
    const eligible = await (await containsText("Eligible (PIM) — not active")).isDisplayed();
    assert.ok(eligible, "the PIM-eligible role is marked");
    await shot("06-pim-eligible");
  });

  await step("bad input on the real sign-in form is explained at the field", async () => {
    await (await byText("button", "Leave the demo")).click();
    await (await byText("button", "Sign in to Microsoft Entra")).click();
    const tenant = await browser.$("#tenant");
    await tenant.waitForDisplayed();
    await tenant.setValue("contoso..com");
    await (await byText("button", "Sign in")).click();
    const err = await browser.$("#tenant-error");
    await err.waitForDisplayed({ timeout: 10000 });
    assert.match(await err.getText(), /empty part/);
    assert.equal(await tenant.getAttribute("aria-invalid"), "true");
    await shot("07-invalid-tenant");
  });
  await step("Cloudflare sign-in + SCIM in one run, keyboard only: choose, review, apply, test, push — without copying an Entra value by hand", async () => {
    await (await byText("button", "Back")).click();
    await (await byText("button", "Try the demo tenant")).click();
    await (await byText("button", "Sign in to the demo tenant")).click();
    await (await byText("h1", "Contoso")).waitForDisplayed({ timeout: 30000 });
    // From here on the demo tenant behaves as Entra does on a busy day.
    await realisticFaults();
    // Keyboard only, from the tenant summary to a pushed sign-in and running provisioning: Tab
    // to a control, Enter (Space on a checkbox) to use it, keys to type. The admin's actions are
    // counted: each control used counts one, each field typed counts one (Enter at the end of a
    // field submits its form, as people do). The deliberate mistake below is not counted.
    const actions = [];
    const click = async (el, what) => {
      actions.push(`click ${what}`);
      await tabTo(el, what);
      await browser.keys((await el.getAttribute("type")) === "checkbox" ? " " : "Enter");
    };
    const type = async (el, value, what) => {
      actions.push(`type ${what}`);
      await tabTo(el, what);
      await browser.keys(value);
    };
    await click(await byText("button", "Next: Choose service"), "Next: Choose service");
    await (await byText("h1", "Choose the service")).waitForDisplayed({ timeout: 10000 });
    const team = await browser.$("#input-team");
    await team.waitForDisplayed();
    await tabTo(team, "the team name");
    await browser.keys("acme corp\uE007");
    const err = await browser.$("#error-team");
    await err.waitForDisplayed({ timeout: 10000 });
    assert.match(await err.getText(), /no spaces/);
    await shot("08-choose-service-bad-team");
    await tabTo(team, "the team name");
    await browser.keys(["Control", "a"]);
    await browser.keys("Backspace");
    await click(await browser.$("#want-scim"), "Also provision with SCIM");
    await type(team, "acme\uE007", "team name + Enter");
    // Register app and Permissions have nothing to decide for a new app: straight to Sync mode.
    await (await byText("h1", "Sync mode")).waitForDisplayed({ timeout: 60000 });
    await waitForFocusOn("Sync mode");
    await (await browser.$("[data-testid='licence-note']")).waitForDisplayed({ timeout: 30000 });
    await type(await browser.$("#people-search"), "Eng\uE007", "search + Enter");
    const add = await browser.$("//button[@aria-label='Add Engineering']");
    await add.waitForDisplayed({ timeout: 10000 });
    await click(add, "Add Engineering");
    await click(await byText("button", "Next: SCIM"), "Next: SCIM");
    await (await byText("h1", "SCIM")).waitForDisplayed();
    await waitForFocusOn("SCIM");
    await click(await byText("button", "Use the demo provider's SCIM endpoint"), "Use the demo SCIM endpoint");
    await (await browser.$("[data-testid='token-set']")).waitForDisplayed({ timeout: 10000 });
    await click(await byText("button", "Next: Review & apply"), "Next: Review & apply");
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    await waitForFocusOn("Review & apply");
    const review = await visibleText();
    assert.match(review, /Nothing needed deciding on Register app and Permissions & consent/);
    for (const t of ["https://acme.cloudflareaccess.com/cdn-cgi/access/callback", "Create the provisioning app", "Assign the group Engineering", "Start provisioning"]) {
      assert.ok(review.includes(t), `the plan shows: ${t}`);
    }
    await shot("11-review");
    await click(await browser.$("//button[starts-with(normalize-space(), 'Apply ')]"), "Apply");
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    const summary = await browser.$("[data-testid='done-summary']");
    await summary.waitForDisplayed({ timeout: 60000 });
    assert.match(await summary.getText(), /every test passed/);
    assert.match(await browser.$("[data-testid='client-id']").getText(), /^[0-9a-f-]{36}$/);
    assert.match(await browser.$("[data-testid='output-api_body']").getText(), /use Copy or Save/);
    await (await browser.$("[data-testid='job-status']")).waitForDisplayed({ timeout: 30000 });
    await shot("12-done");
    await type(await browser.$("#push-account_id"), "023e105f4ecef8ad9ca31a8372d0c353", "Cloudflare account ID");
    await type(await browser.$("#push-api_token"), "demo-token-0123456789abcdef\uE007", "Cloudflare API token + Enter");
    await (await containsText("Created the identity provider")).waitForDisplayed({ timeout: 30000 });
    console.log(`  admin actions for Cloudflare sign-in + SCIM: ${actions.length} (${actions.join("; ")})`);
    assert.ok(actions.length <= 12, `${actions.length} actions; the target is 12`);
    const first = await pushedSecret();
    assert.ok(first.secretKeyId && first.secretOnApp, `the pushed secret is the app's: ${JSON.stringify(first)}`);
    firstPushKey = first.secretKeyId;
    await shot("13-done-pushed");
  });

  await step("re-run: the secret's expiry is shown, a rotation adds a new secret, the old one is retired after the push", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    const again = await browser.$("//button[@aria-label='Re-run Cloudflare Access (acme)']");
    await again.waitForDisplayed({ timeout: 10000 });
    await (await byText("button", "Check all for expiry and drift")).click();
    const status = await browser.$("[data-testid='previous-status']");
    await status.waitForDisplayed({ timeout: 30000 });
    assert.match(await status.getText(), /Nothing needs attention/);
    assert.match(await status.getText(), /Client secret valid for 36[45] more days/);
    await shot("13a-choose-service-previous", "#previous-h");
    await again.click();
    await (await byText("h1", "Register the app")).waitForDisplayed({ timeout: 60000 });
    const table = await browser.$("//table[caption[contains(., 'newest first')]]");
    await table.waitForDisplayed({ timeout: 10000 });
    assert.match(await table.getText(), /Valid for 36[45] more days/);
    assert.match(await visibleText(), /An existing secret from the wizard is still valid/);
    await (await browser.$("#rotate")).click();
    await (await containsText("next to the current one.")).waitForDisplayed({ timeout: 30000 });
    assert.equal(await (await browser.$("#rotate")).isSelected(), true);
    await shot("13b-register-rotate", "#secrets-h");
    // Through the remaining steps (Permissions, Sync mode, SCIM: the choices of the first run) to Review.
    // A step may still be reading the tenant (Entra's lag is in seconds now): wait for its
    // Next button, or for Review, rather than a fixed pause.
    while (!(await (await byText("h1", "Review & apply")).isExisting())) {
      const next = () => browser.$("//button[starts-with(normalize-space(), 'Next: ')]");
      await browser.waitUntil(async () => (await (await next()).isClickable()) || (await (await byText("h1", "Review & apply")).isExisting()), {
        timeout: 30000,
        timeoutMsg: "neither a Next button nor Review & apply appeared",
      });
      if (await (await next()).isClickable()) await (await next()).click();
      await browser.pause(300);
    }
    await (await byText("h1", "Review & apply")).waitForDisplayed();
    assert.match(await visibleText(), /Add a new client secret valid for 365 days .*next to the current one/);
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    const retire = await browser.$("//section[.//h2[normalize-space()='Retire the old secret']]");
    await retire.waitForDisplayed({ timeout: 60000 });
    assert.match(await retire.getText(), /Hand the new secret to Cloudflare One first/);
    const retireButton = await byText("button", "Retire the old secret…");
    assert.equal(await retireButton.isEnabled(), false, "retiring waits for the hand-over");
    await (await browser.$("#push-account_id")).setValue("023e105f4ecef8ad9ca31a8372d0c353");
    await (await browser.$("#push-api_token")).setValue("demo-token-0123456789abcdef");
    await (await byText("button", "Push to Cloudflare One")).click();
    await (await containsText("Updated the identity provider")).waitForDisplayed({ timeout: 30000 });
    await browser.waitUntil(() => retireButton.isEnabled(), { timeout: 30000, timeoutMsg: "the retire button stayed disabled after the push" });
    await retireButton.click();
    const yes = await byText("button", "Yes, retire it");
    await yes.waitForDisplayed();
    await shot("13c-done-retire-confirm", "#retire-h");
    await yes.click();
    // Entra keeps accepting a removed secret for a while: Done says so instead of "only the new
    // one signs in" (or, with a keychain copy, tests it until refused).
    await (await containsText("Retired:")).waitForDisplayed({ timeout: 30000 });
    assert.match(await retire.getText(), /Entra can keep accepting a removed secret|try it until Entra refuses it/);
    // The push after the rotation carried the new secret: the stand-in holds a secret that is
    // still on the app now that the old one is retired, and it is not the first push's.
    const after = await pushedSecret();
    assert.ok(after.secretOnApp, `Cloudflare holds a retired secret: ${JSON.stringify(after)}`);
    assert.notEqual(after.secretKeyId, firstPushKey, "the push after rotation sent the new secret");
    await shot("13d-done-retired", "#retire-h");
  });

  await step("SCIM in the demo: assign groups, preview, verify a local SCIMMY server as Entra would, apply, watch the job provision", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    await chooseService("Any SCIM 2.0 service", "#input-service");
    const service = await browser.$("#input-service");
    await service.waitForDisplayed();
    await service.setValue("Acme File Transfer");
    await (await byText("button", "Continue")).click();
    await (await byText("h1", "Sync mode")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("[data-testid='licence-note']")).waitForDisplayed({ timeout: 30000 });
    for (const [query, name] of [["Eng", "Engineering"], ["Sal", "Sales"]]) {
      await (await browser.$("#people-search")).setValue(query);
      await (await byText("button", "Search")).click();
      const add = await browser.$(`//button[@aria-label=${JSON.stringify(`Add ${name}`)}]`);
      await add.waitForDisplayed({ timeout: 10000 });
      await add.click();
    }
    await (await byText("button", "Preview who would sync")).click();
    const preview = await browser.$("[data-testid='sync-preview']");
    await preview.waitForDisplayed({ timeout: 20000 });
    const previewText = await preview.getText();
    assert.match(previewText, /5 users and 2 groups would be provisioned/);
    assert.match(previewText, /Members of nested groups are not provisioned/);
    assert.match(previewText, /without a mail address/);
    await shot("14-sync-preview", "[data-testid='sync-preview']");

    await (await byText("button", "Next: SCIM")).click();
    await (await byText("h1", "SCIM")).waitForDisplayed();
    await (await browser.$("#input-scim_url")).setValue(scimmy.url);
    await (await browser.$("#input-scim_token")).setValue(SCIM_TOKEN);
    await (await byText("button", "Set token")).click();
    await (await browser.$("[data-testid='token-set']")).waitForDisplayed({ timeout: 10000 });
    assert.equal(await (await browser.$("#input-scim_token")).getValue(), "", "the token field is emptied");
    await (await browser.$("//label[contains(., 'Also run write tests')]//input")).click();
    await (await byText("button", "Verify endpoint")).click();
    const report = await browser.$("[data-testid='scim-report']");
    await report.waitForDisplayed({ timeout: 30000 });
    const reportText = await report.getText();
    assert.match(reportText, /Ready for Entra/);
    assert.ok(reportText.includes("Entra's Test Connection query answers an empty list"));
    await shot("15-scim-report", "[data-testid='scim-report']");
    await (await byText("button", "Use this URL")).click();
    assert.ok((await (await browser.$("#input-scim_url")).getValue()).endsWith("?aadOptscim062020"));

    await (await byText("button", "Next: Review & apply")).click();
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    const review = await visibleText();
    for (const t of ["Create the provisioning app", "Create the provisioning job", "Assign the group Engineering", "Test the connection to the SCIM endpoint", "Start provisioning"]) {
      assert.ok(review.includes(t), `the plan shows: ${t}`);
    }
    await shot("16-review-scim");
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    const status = await browser.$("[data-testid='job-status']");
    await status.waitForDisplayed({ timeout: 30000 });
    await browser.waitUntil(async () => /in sync/.test(await (await browser.$("[data-testid='job-status']")).getText()), {
      timeout: 30000,
      timeoutMsg: "the job never reported its first cycle",
    });
    assert.match(await (await browser.$("[data-testid='job-status']")).getText(), /5 users and 2 groups in sync/);
    await shot("17-done-provisioning", "#prov-h");

    await (await browser.$("#ondemand-search")).setValue("Adele");
    await (await byText("button", "Find user")).click();
    const now = await browser.$("//button[@aria-label='Provision now: Adele Vance']");
    await now.waitForDisplayed({ timeout: 10000 });
    await now.click();
    await (await browser.$("[data-testid='on-demand']")).waitForDisplayed({ timeout: 20000 });
    assert.match(await (await browser.$("[data-testid='on-demand']")).getText(), /Done \(update\)/);
    await (await byText("button", "Show the latest entries")).click();
    await (await browser.$("[data-testid='logs']")).waitForDisplayed({ timeout: 20000 });
    await shot("18-on-demand-and-log", "[data-testid='on-demand']");

    // The independent SCIM server really received Entra's users and groups.
    const users = await (await fetch(`${scimmy.url}/Users`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } })).json();
    assert.equal(users.totalResults, 5, `SCIMMY holds the 5 provisioned users: ${JSON.stringify(users.Resources?.map((u) => u.userName))}`);
    const groups = await (await fetch(`${scimmy.url}/Groups`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } })).json();
    assert.equal(groups.totalResults, 2);
  });
  await step("any OpenID Connect service: two redirect URIs, applied and tested; Done hands over the issuer and discovery URL", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    await chooseService("Any OpenID Connect service", "#input-redirect_uris");
    const name = await browser.$("#input-name");
    await name.waitForDisplayed();
    await name.setValue("Team Wiki");
    await (await browser.$("#input-redirect_uris")).setValue("https://wiki.contoso.com/oidc/callback, http://localhost:8080/callback");
    await (await byText("button", "Continue")).click();
    // A new app with consent given in the flow: nothing to decide before Review.
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 60000 });
    const registered = await visibleText();
    assert.ok(registered.includes("https://wiki.contoso.com/oidc/callback") && registered.includes("http://localhost:8080/callback"));
    // Through the remaining steps to Review, whichever the provider has.
    // A step may still be reading the tenant (Entra's lag is in seconds now): wait for its
    // Next button, or for Review, rather than a fixed pause.
    while (!(await (await byText("h1", "Review & apply")).isExisting())) {
      const next = () => browser.$("//button[starts-with(normalize-space(), 'Next: ')]");
      await browser.waitUntil(async () => (await (await next()).isClickable()) || (await (await byText("h1", "Review & apply")).isExisting()), {
        timeout: 30000,
        timeoutMsg: "neither a Next button nor Review & apply appeared",
      });
      if (await (await next()).isClickable()) await (await next()).click();
      await browser.pause(300);
    }
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    const summary = await browser.$("[data-testid='done-summary']");
    await summary.waitForDisplayed({ timeout: 60000 });
    assert.match(await summary.getText(), /every test passed/);
    const settings = await (await browser.$("[data-testid='output-oidc_settings']")).getText();
    assert.match(settings, /"issuer": "http:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]{36}\/v2\.0"/);
    assert.match(settings, /\.well-known\/openid-configuration/);
    assert.match(settings, /use Copy or Save/);
    await shot("19-done-oidc");
  });

  await step("any SAML service: SAML mode, Entity ID, a signing certificate, the live metadata test and the lockout guard", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    await chooseService("Any SAML service", "#input-entity_id");
    const name = await browser.$("#input-name");
    await name.waitForDisplayed();
    await name.setValue("Acme Files");
    await (await browser.$("#input-entity_id")).setValue("https://files.contoso.com/saml/metadata");
    await (await browser.$("#input-reply_url")).setValue("https://files.contoso.com/saml/acs");
    await (await browser.$("#input-relay_state")).setValue("/home");
    await (await browser.$("#input-groups")).setValue("SecurityGroup");
    await (await byText("button", "Continue")).click();
    await (await byText("h1", "Register the app")).waitForDisplayed({ timeout: 60000 });
    const registered = await visibleText();
    assert.ok(registered.includes("Identifier (Entity ID)") && registered.includes("https://files.contoso.com/saml/metadata"), registered);
    assert.match(registered, /A new certificate valid for 1095 days/);
    await shot("20-register-saml");
    await (await byText("button", "Next: Review & apply")).click();
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    const review = await visibleText();
    assert.ok(review.includes("Turn on SAML single sign-on") && review.includes("Add a SAML signing certificate"), review);
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    const summary = await browser.$("[data-testid='done-summary']");
    await summary.waitForDisplayed({ timeout: 60000 });
    assert.match(await summary.getText(), /confirm below that an administrator of Acme Files can still sign in/);
    const check = await browser.$("[data-testid='check-saml_metadata']");
    await check.waitForDisplayed({ timeout: 60000 });
    assert.match(await check.getText(), /Passed/);
    assert.match(await (await browser.$("[data-testid='saml-metadata-url']")).getText(), /federationmetadata\/2007-06\/federationmetadata\.xml\?appid=[0-9a-f-]{36}$/);
    assert.match(await (await browser.$("[data-testid='saml-sha256']")).getText(), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    await shot("21-done-saml", "#saml-h");
    await (await byText("button", "An administrator of Acme Files still signs in with a password")).click();
    await browser.waitUntil(async () => /every test passed/.test(await (await browser.$("[data-testid='done-summary']")).getText()), { timeout: 10000 });
    // The test sign-in: the simulator signs a real SAMLResponse, the wizard verifies it and shows
    // what Acme Files will receive.
    await (await browser.$("[data-testid='test-sign-in']")).click();
    const inspector = await browser.$("[data-testid='claim-inspector']");
    await inspector.waitForDisplayed({ timeout: 60000 });
    assert.equal(await (await browser.$("[data-testid='inspected-identity']")).getText(), "adele@contoso.com");
    const inspected = await inspector.getText();
    assert.match(inspected, /NameID \(emailAddress format\)/);
    assert.match(inspected, /assertion signature verified with the app's certificate [0-9A-F]{40}/);
    assert.match(inspected, /Engineering/);
    await shot("22-test-sign-in-saml", "#inspect-h");
  });

  await step("SAML certificate rotation: a new certificate next to the active one, made active after hand-over, then the old one removed", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    const again = await browser.$("//button[@aria-label='Re-run Acme Files']");
    await again.waitForDisplayed({ timeout: 10000 });
    await again.click();
    await (await byText("h1", "Register the app")).waitForDisplayed({ timeout: 60000 });
    const rotate = await browser.$("#rotate-cert");
    await rotate.waitForDisplayed({ timeout: 30000 });
    await rotate.click();
    await (await containsText("added next to the active one")).waitForDisplayed({ timeout: 30000 });
    await (await byText("button", "Next: Review & apply")).click();
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    const card = await browser.$("[data-testid='new-certificate']");
    await card.waitForDisplayed({ timeout: 60000 });
    const newThumb = await (await browser.$("[data-testid='new-thumbprint']")).getText();
    assert.match(newThumb, /^[0-9A-F]{40}$/);
    await shot("23-rotation-new-certificate", "#rotate-h");
    // Entra still signs with the old certificate until the admin says the service has the new one.
    await (await browser.$("[data-testid='test-sign-in']")).click();
    await browser.waitUntil(async () => !(await (await browser.$("[data-testid='claim-inspector']")).getText()).includes(newThumb) && (await (await browser.$("[data-testid='claim-inspector']")).isDisplayed()), { timeout: 30000 });
    await (await byText("button", "Acme Files has the new certificate: make it active")).click();
    const old = await browser.$("[data-testid='old-certificate']");
    await old.waitForDisplayed({ timeout: 60000 });
    // The old certificate is still there (Entra keeps it until it is removed), and is not the new one.
    const oldText = await old.getText();
    const oldThumb = oldText.match(/[0-9A-F]{40}/)?.[0];
    assert.ok(oldThumb && oldThumb !== newThumb, `the old certificate is shown with its own thumbprint: ${oldText}`);
    await (await browser.$("[data-testid='test-sign-in']")).click();
    await browser.waitUntil(async () => (await (await browser.$("[data-testid='claim-inspector']")).getText()).includes(newThumb), { timeout: 30000, timeoutMsg: "the test sign-in was not signed by the new certificate" });
    await (await byText("button", "Remove the old certificate")).click();
    await (await containsText("The old certificate is gone")).waitForDisplayed({ timeout: 60000 });
    assert.ok(!(await (await browser.$("[data-testid='old-certificate']")).isExisting()));
    assert.match(await (await browser.$("[data-testid='retired-certificates']")).getText(), new RegExp(oldThumb), "Done names the certificate it removed");
  });

  await step("the file-transfer service: SAML and SCIM on one enterprise app, only the assigned group signs in, the test sign-in shows it", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    await chooseService("File-transfer service (SAML + SCIM)", "#input-subdomain");
    await (await browser.$("#input-subdomain")).setValue("acme");
    await (await browser.$("#input-entity_id")).setValue("https://acme.files.example.com/saml");
    await (await browser.$("#input-reply_url")).setValue("https://acme.files.example.com/saml/acs");
    await (await byText("button", "Continue")).click();
    await (await byText("h1", "Register the app")).waitForDisplayed({ timeout: 60000 });
    await (await byText("button", "Next: Sync mode")).click();
    await (await byText("h1", "Sync mode")).waitForDisplayed({ timeout: 30000 });
    const read = await byText("button", "Read the provisioning settings");
    if (await read.isExisting()) await read.click();
    await (await browser.$("[data-testid='licence-note']")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("#people-search")).setValue("Eng");
    await (await byText("button", "Search")).click();
    const add = await browser.$("//button[@aria-label='Add Engineering']");
    await add.waitForDisplayed({ timeout: 10000 });
    await add.click();
    await (await byText("button", "Next: SCIM")).click();
    await (await byText("h1", "SCIM")).waitForDisplayed();
    await (await browser.$("#input-scim_url")).setValue(scimmy.url);
    await (await browser.$("#input-scim_token")).setValue(SCIM_TOKEN);
    await (await byText("button", "Set token")).click();
    await (await browser.$("[data-testid='token-set']")).waitForDisplayed({ timeout: 10000 });
    await (await byText("button", "Next: Review & apply")).click();
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    const review = await visibleText();
    for (const t of ["Turn on SAML single sign-on", "Add a SAML signing certificate", "Create the provisioning job", "Assign the group Engineering"]) {
      assert.ok(review.includes(t), `the plan shows: ${t}`);
    }
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    const check = await browser.$("[data-testid='check-saml_metadata']");
    await check.waitForDisplayed({ timeout: 60000 });
    assert.match(await check.getText(), /Passed/);
    await (await browser.$("[data-testid='job-status']")).waitForDisplayed({ timeout: 30000 });
    // Adele is in Engineering, the group assigned to the app: she may sign in.
    await (await browser.$("[data-testid='test-sign-in']")).click();
    const inspector = await browser.$("[data-testid='claim-inspector']");
    await inspector.waitForDisplayed({ timeout: 60000 });
    assert.equal(await (await browser.$("[data-testid='inspected-identity']")).getText(), "adele@contoso.com");
    await shot("24-file-transfer-test-sign-in", "#inspect-h");
  });
  await step("Firezone: connect its own apps (late, as Entra replicates them), Assigned groups only with nested members counted, groups on Firezone Authentication", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    await chooseService("Firezone", "#input-account");
    await (await byText("button", "Next: Connect Firezone")).click();
    await (await byText("h1", "Permissions & consent")).waitForDisplayed({ timeout: 30000 });
    const apps = await browser.$("[data-testid='vendor-apps']");
    await apps.waitForDisplayed({ timeout: 30000 });
    assert.match(await apps.getText(), /Firezone Authentication[\s\S]*Not in this tenant/);
    await shot("25-firezone-connect");
    await (await byText("button", "Connect Firezone (demo: its console, as you)")).click();
    // The apps appear a moment after consent; the step looks again every 5 seconds.
    await browser.waitUntil(async () => /Firezone is connected/.test(await visibleText()), {
      timeout: 40000,
      timeoutMsg: "Firezone's apps never showed as connected",
    });
    assert.match(await (await browser.$("[data-testid='vendor-apps']")).getText(), /Directory\.Read\.All \(application\)/);
    await shot("26-firezone-connected", "[data-testid='vendor-apps']");
    await (await byText("button", "Next: Sync mode")).click();
    await (await byText("h1", "Sync mode")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("[data-testid='licence-note']")).waitForDisplayed({ timeout: 30000 });
    assert.match(await visibleText(), /Assigned groups only/);
    await (await browser.$("#people-search")).setValue("Eng");
    await (await byText("button", "Search")).click();
    const add = await browser.$("//button[@aria-label='Add Engineering']");
    await add.waitForDisplayed({ timeout: 10000 });
    await add.click();
    await (await byText("button", "Preview who would sync")).click();
    const preview = await browser.$("[data-testid='sync-preview']");
    await preview.waitForDisplayed({ timeout: 20000 });
    const previewText = await preview.getText();
    assert.match(previewText, /3 users and 1 group would sync to Firezone/);
    assert.match(previewText, /Members of nested groups are included/);
    await (await byText("button", "Next: Review & apply")).click();
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    const review = await visibleText();
    for (const t of ['Require assignment on "Firezone Authentication"', "Assign the group Engineering"]) {
      assert.ok(review.includes(t), `the plan shows: ${t}`);
    }
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    for (const id of ["vendor_consent_auth", "vendor_consent_sync", "vendor_assignments"]) {
      const check = await browser.$(`[data-testid='check-${id}']`);
      await check.waitForDisplayed({ timeout: 60000 });
      assert.match(await check.getText(), /Passed/, `${id} passes`);
    }
    assert.match(await visibleText(), /In Firezone: choose "Assigned groups only"/);
    await shot("27-firezone-done");
  });

  await step("Twingate: its sign-in app connected from its console, its gallery app provisioning to SCIMMY with the gallery's own template", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed();
    await chooseService("Twingate", "#input-network");
    await (await byText("button", "Next: Connect Twingate")).click();
    await (await byText("h1", "Permissions & consent")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("[data-testid='vendor-apps']")).waitForDisplayed({ timeout: 30000 });
    assert.ok((await visibleText()).includes("Tenant ID"), "the tenant ID is handed over for Twingate's console");
    await (await byText("button", "Connect Twingate (demo: its console, as you)")).click();
    await browser.waitUntil(async () => /Twingate is connected/.test(await visibleText()), {
      timeout: 40000,
      timeoutMsg: "Twingate's app never showed as connected",
    });
    await (await byText("button", "Next: Sync mode")).click();
    await (await byText("h1", "Sync mode")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("[data-testid='licence-note']")).waitForDisplayed({ timeout: 30000 });
    await (await browser.$("#people-search")).setValue("Sal");
    await (await byText("button", "Search")).click();
    const add = await browser.$("//button[@aria-label='Add Sales']");
    await add.waitForDisplayed({ timeout: 10000 });
    await add.click();
    await (await byText("button", "Preview who would sync")).click();
    const preview = await browser.$("[data-testid='sync-preview']");
    await preview.waitForDisplayed({ timeout: 20000 });
    assert.match(await preview.getText(), /Alex Wilber: Twingate's Help Center/);
    await shot("28-twingate-no-mail", "[data-testid='sync-preview']");
    await (await byText("button", "Next: SCIM")).click();
    await (await byText("h1", "SCIM")).waitForDisplayed();
    await (await browser.$("#input-scim_url")).setValue(scimmy.url);
    await (await browser.$("#input-scim_token")).setValue(SCIM_TOKEN);
    await (await byText("button", "Set token")).click();
    await (await browser.$("[data-testid='token-set']")).waitForDisplayed({ timeout: 10000 });
    await (await byText("button", "Next: Review & apply")).click();
    await (await byText("h1", "Review & apply")).waitForDisplayed({ timeout: 30000 });
    const review = await visibleText();
    for (const t of ['(the gallery app "Twingate")', "Create the provisioning job", "Assign the group Sales"]) {
      assert.ok(review.includes(t), `the plan shows: ${t}`);
    }
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 60000 });
    const consent = await browser.$("[data-testid='check-vendor_consent_signin']");
    await consent.waitForDisplayed({ timeout: 60000 });
    assert.match(await consent.getText(), /Passed/);
    await browser.waitUntil(async () => /in sync/.test(await (await browser.$("[data-testid='job-status']")).getText()), {
      timeout: 40000,
      timeoutMsg: "Twingate's provisioning job never reported its first cycle",
    });
    // SCIMMY, the independent SCIM server, really holds the assigned group and its people.
    const scimGet = async (path) => (await fetch(`${scimmy.url}${path}`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } })).json();
    const scimGroups = await scimGet("/Groups");
    const sales = scimGroups.Resources?.find((g) => g.displayName === "Sales");
    assert.ok(sales, `SCIMMY holds the Sales group: ${JSON.stringify(scimGroups.Resources?.map((g) => g.displayName))}`);
    const scimUsers = (await scimGet("/Users?count=200")).Resources ?? [];
    const members = (sales.members ?? []).map((m) => scimUsers.find((u) => u.id === m.value)?.userName);
    // Sales's enabled members (Lynne's account is disabled: Entra does not create her).
    assert.ok(members.includes("patti@contoso.com") && members.includes("alex@contoso.com") && !members.includes("lynne@contoso.com"), `Sales's members at SCIMMY: ${JSON.stringify(members)}`);
    assert.ok(members.every(Boolean), `every member of Sales is a user SCIMMY holds: ${JSON.stringify(members)}`);
    await shot("29-twingate-done");
  });
  console.log(`E2E passed; screenshots in ${out}; axe-core: ${axeTotals.pages} screens, 0 serious or critical violations, ${axeTotals.minor} lesser`);
} catch (e) {
  if (browser) await browser.saveScreenshot(join(out, "failure.png")).catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.deleteSession().catch(() => {});
  stopDriver();
  scimmy.child.kill();
}
