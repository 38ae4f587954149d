// End to end, the way a real tenant is used: the desktop app (not its demo) signs in to the
// simulated tenant started as a separate process (`entra-sim`) and entered as a custom authority
// and Graph root; the sign-in link opens in "the system browser" (a scripted one, named by
// $BROWSER, that follows the link as a person's browser would); the session is kept in the OS
// keychain (gnome-keyring, in the D-Bus session scripts/test.sh starts) and resumed after a
// restart; the new secret is pushed to a provider API at a base URL of its own
// (ENTRA_SETUP_PUSH_API: the simulator's stand-in for Cloudflare's API); and an admin without the
// right role hands a consent link to a colleague, who opens it, and the wizard sees it used.
//
//   node tests/e2e/real_tenant.e2e.mjs   (inside dbus-run-session with gnome-keyring, under Xvfb)
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";
import { remote } from "webdriverio";
import { appEnv, freePort } from "./support.mjs";

const root = resolve(import.meta.dirname, "../..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const app = process.env.ENTRA_SETUP_APP ?? join(targetDir, "debug", "entra-setup-desktop");
const simBin = join(targetDir, "debug", "entra-sim");
const out = process.env.E2E_OUT ?? join(root, "target", "e2e");
mkdirSync(out, { recursive: true });
assert.ok(existsSync(app), `app binary not found at ${app}`);
assert.ok(existsSync(simBin), `entra-sim not found at ${simBin}; build it with cargo build -p entra-setup-sim`);
assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, "run inside dbus-run-session with gnome-keyring (scripts/test.sh does)");

/** The simulated tenant as its own process, approving sign-ins as Adele until told otherwise. */
async function startSim() {
  const child = spawn(simBin, ["--auto", "adele@contoso.com", "--device-interval", "1", "--local-scim"], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const m = line.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) return { child, url: m[1] };
  }
  throw new Error("entra-sim did not start");
}
const sim = await startSim();
process.on("exit", () => sim.child.kill());
const control = async (path, body) => {
  const r = await fetch(`${sim.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(r.status, 204, `${path}: ${r.status}`);
};

// "The system browser" (tests/e2e/scripted-browser.mjs): follows the link and its redirects back
// to the app's loopback listener, and submits a SAML sign-in's self-posting form, as a person's
// browser does once they have signed in. Each link it is given is logged.
const scratch = mkdtempSync(join(tmpdir(), "entra-setup-browser-"));
const opened = join(scratch, "opened.log");
writeFileSync(opened, "");
const browserScript = join(root, "tests", "e2e", "scripted-browser.mjs");
chmodSync(browserScript, 0o755);
const browserLog = () => readFileSync(opened, "utf8").split("\n").filter(Boolean);
const linksOpened = () => browserLog().filter((l) => !l.startsWith("page: "));

const CF_ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353";
const CF_TOKEN = "real-path-token-0123456789abcdef";
const env = appEnv("entra-setup-real-", {
  BROWSER: browserScript,
  SCRIPTED_BROWSER_LOG: opened,
  ENTRA_SETUP_PUSH_API: `${sim.url}/_fake/cloudflare/client/v4`,
  ENTRA_SETUP_RETRY_MS: "50",
});
const port = await freePort();
const nativePort = await freePort();
const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], { env, stdio: ["ignore", "inherit", "inherit"], detached: true });
const stopDriver = () => {
  try {
    process.kill(-driver.pid, "SIGTERM");
  } catch {}
};
process.on("exit", stopDriver);

let browser;
const byText = (tag, text) => browser.$(`//${tag}[normalize-space()=${JSON.stringify(text)}]`);
const containsText = (text) => browser.$(`//*[contains(normalize-space(), ${JSON.stringify(text)}) and not(*[contains(normalize-space(), ${JSON.stringify(text)})])]`);
const visibleText = () => browser.$("main").getText();
async function launch() {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/status`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await remote({ hostname: "127.0.0.1", port, logLevel: "warn", capabilities: { "tauri:options": { application: app }, "wdio:enforceWebDriverClassic": true } });
}
async function step(name, fn) {
  process.stdout.write(`- ${name}\n`);
  await fn();
}
async function chooseService(label, firstInput) {
  const choice = await browser.$(`//label[contains(., ${JSON.stringify(label)})]//input`);
  await choice.waitForExist({ timeout: 10000 });
  await browser.waitUntil(async () => {
    if (!(await choice.isSelected())) await choice.click().catch(() => {});
    return (await choice.isSelected()) && (await (await browser.$(firstInput)).isExisting());
  }, { timeout: 15000, interval: 500, timeoutMsg: `could not choose ${label}` });
}
/** Through the steps with nothing to decide, to Review & apply. */
async function nextUntilReview() {
  while (!(await (await byText("h1", "Review & apply")).isExisting())) {
    const next = () => browser.$("//button[starts-with(normalize-space(), 'Next: ')]");
    await browser.waitUntil(async () => (await (await next()).isClickable()) || (await (await byText("h1", "Review & apply")).isExisting()), {
      timeout: 60000,
      timeoutMsg: "neither a Next button nor Review & apply appeared",
    });
    if (await (await next()).isClickable()) await (await next()).click();
    await browser.pause(300);
  }
}
/** Clicks the button until the screen with this heading shows (a screen may still be reading
 * the tenant when the button first appears). */
async function clickThrough(button, heading) {
  await browser.waitUntil(async () => {
    if (await (await byText("h1", heading)).isDisplayed().catch(() => false)) return true;
    const b = await byText("button", button);
    if (await b.isClickable().catch(() => false)) await b.click().catch(() => {});
    return false;
  }, { timeout: 60000, interval: 1000, timeoutMsg: `"${button}" never led to ${heading}` });
}
async function signInToTheTenant() {
  await (await byText("button", "Sign in to Microsoft Entra")).click();
  const tenant = await browser.$("#tenant");
  await tenant.waitForDisplayed({ timeout: 10000 });
  await tenant.setValue("contoso.com");
  await (await browser.$("#cloud")).selectByAttribute("value", "custom");
  await (await browser.$("#authority")).setValue(sim.url);
  await (await browser.$("#graph")).setValue(sim.url);
  await (await browser.$("//input[@name='method' and @value='browser']")).click();
  await (await browser.$("//form//button[normalize-space()='Sign in']")).click();
  await (await byText("h1", "Contoso")).waitForDisplayed({ timeout: 60000 });
}
/** The OS keychain's entries of the app (gnome-keyring, through the Secret Service). */
function keychainEntries() {
  const r = spawnSync("secret-tool", ["search", "--all", "service", "entra-setup"], { encoding: "utf8" });
  return (r.stdout + r.stderr).split("\n").filter((l) => l.startsWith("attribute.username")).map((l) => l.split(" = ")[1]);
}

try {
  await launch();

  await step("sign-in to a tenant at a custom authority, through the system browser; the session is kept in the OS keychain", async () => {
    await (await byText("button", "Sign in to Microsoft Entra")).waitForDisplayed({ timeout: 60000 });
    await signInToTheTenant();
    const links = linksOpened();
    assert.equal(links.length, 1, `the sign-in opened one link in the system browser: ${links}`);
    assert.ok(links[0].startsWith(`${sim.url}/`) && links[0].includes("/oauth2/v2.0/authorize?"), links[0]);
    assert.match(links[0], /code_challenge_method=S256/);
    const entries = keychainEntries();
    assert.ok(entries.length >= 1, `the session's tokens are in the OS keychain: ${entries}`);
    assert.ok(entries.every((e) => !/^ey|secret/i.test(e)), "keychain entries are named by key, not by value");
    await browser.saveScreenshot(join(out, "40-real-signed-in.png"));
  });

  await step("Cloudflare against the real-tenant path: applied, tested, pushed to the provider API at its own base URL", async () => {
    await clickThrough("Next: Choose service", "Choose the service");
    await chooseService("Cloudflare One", "#input-team");
    await (await browser.$("#input-team")).setValue("realpath");
    await (await byText("button", "Continue")).click();
    await nextUntilReview();
    assert.ok((await visibleText()).includes("https://realpath.cloudflareaccess.com/cdn-cgi/access/callback"));
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 120000 });
    const summary = await browser.$("[data-testid='done-summary']");
    await summary.waitForDisplayed({ timeout: 120000 });
    assert.match(await summary.getText(), /every test passed/);
    const clientId = await browser.$("[data-testid='client-id']").getText();
    await (await browser.$("#push-account_id")).setValue(CF_ACCOUNT);
    await (await browser.$("#push-api_token")).setValue(CF_TOKEN);
    await (await byText("button", "Push to Cloudflare One")).click();
    await (await containsText("Created the identity provider")).waitForDisplayed({ timeout: 60000 });
    const base = `${sim.url}/_fake/cloudflare/client/v4/accounts/${CF_ACCOUNT}/access/identity_providers`;
    const list = await (await fetch(base, { headers: { authorization: `Bearer ${CF_TOKEN}` } })).json();
    assert.equal(list.result.length, 1, JSON.stringify(list));
    assert.equal(list.result[0].config.client_id, clientId, "the provider API at ENTRA_SETUP_PUSH_API got this app");
    const check = (await (await fetch(`${base}/${list.result[0].id}/entra_check`, { headers: { authorization: `Bearer ${CF_TOKEN}` } })).json()).result;
    assert.ok(check.secretOnApp, `the pushed secret is the app's: ${JSON.stringify(check)}`);
    await browser.saveScreenshot(join(out, "41-real-pushed.png"));
  });

  await step("SAML and SCIM on one app with assignment required: the test sign-in of someone not assigned shows AADSTS50105, of someone assigned passes", async () => {
    await (await browser.$("//nav//button[.//span[normalize-space()='Choose service']]")).click();
    await (await byText("h1", "Choose the service")).waitForDisplayed({ timeout: 10000 });
    await chooseService("File-transfer service (SAML + SCIM)", "#input-subdomain");
    await (await browser.$("#input-subdomain")).setValue("realpath");
    await (await browser.$("#input-entity_id")).setValue("https://realpath.files.example.com/saml");
    await (await browser.$("#input-reply_url")).setValue("https://realpath.files.example.com/saml/acs");
    await (await byText("button", "Continue")).click();
    await (await byText("h1", "Register the app")).waitForDisplayed({ timeout: 60000 });
    await (await byText("button", "Next: Sync mode")).click();
    await (await byText("h1", "Sync mode")).waitForDisplayed({ timeout: 30000 });
    const read = await byText("button", "Read the provisioning settings");
    if (await read.isExisting()) await read.click();
    await (await browser.$("#people-search")).setValue("Sal");
    await (await byText("button", "Search")).click();
    const add = await browser.$("//button[@aria-label='Add Sales']");
    await add.waitForDisplayed({ timeout: 10000 });
    await add.click();
    await (await byText("button", "Next: SCIM")).click();
    await (await byText("h1", "SCIM")).waitForDisplayed();
    await (await browser.$("#input-scim_url")).setValue(`${sim.url}/_fake/scim/v2`);
    await (await browser.$("#input-scim_token")).setValue("demo-scim-token-7f3a9c");
    await (await byText("button", "Set token")).click();
    await (await browser.$("[data-testid='token-set']")).waitForDisplayed({ timeout: 10000 });
    await nextUntilReview();
    assert.ok((await visibleText()).includes("Assign the group Sales"));
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 120000 });
    await (await browser.$("[data-testid='check-saml_metadata']")).waitForDisplayed({ timeout: 120000 });
    // Adele is not in Sales, the only group assigned: Entra refuses her in her browser with
    // AADSTS50105 (its error page; nothing comes back to the app, which keeps waiting until
    // she cancels).
    const before = linksOpened().length;
    await (await browser.$("[data-testid='test-sign-in']")).click();
    await browser.waitUntil(async () => browserLog().includes("page: AADSTS50105"), {
      timeout: 60000,
      timeoutMsg: `Entra did not refuse the unassigned user with AADSTS50105: ${browserLog().slice(-3)}`,
    });
    assert.ok(linksOpened().length > before, "the test sign-in went through the system browser");
    assert.match(await visibleText(), /Waiting for the sign-in/);
    await browser.saveScreenshot(join(out, "43-real-not-assigned.png"));
    await (await byText("button", "Cancel")).click();
    await browser.waitUntil(async () => (await (await browser.$("[data-testid='test-sign-in']")).isEnabled()), { timeout: 30000, timeoutMsg: "Cancel did not end the test sign-in" });
    // Patti is in Sales: her test sign-in passes, and the claim inspector shows her.
    await control("/_sim/approval", { auto: { upn: "patti@contoso.com", device_polls: 1 } });
    await (await browser.$("[data-testid='test-sign-in']")).click();
    await browser.waitUntil(async () => (await (await browser.$("[data-testid='inspected-identity']")).isExisting()) && (await (await browser.$("[data-testid='inspected-identity']")).getText()) === "patti@contoso.com", {
      timeout: 60000,
      timeoutMsg: "the assigned user's test sign-in did not pass",
    });
    await control("/_sim/approval", { auto: { upn: "adele@contoso.com", device_polls: 1 } });
  });

  await step("a restart resumes the session from the OS keychain, without the browser", async () => {
    const opened = linksOpened().length;
    await browser.deleteSession();
    await launch();
    await (await byText("h1", "Contoso")).waitForDisplayed({ timeout: 60000 });
    assert.equal(linksOpened().length, opened, "no new sign-in in the browser");
  });

  await step("an admin who cannot grant application permissions hands a consent link to a colleague, who opens it", async () => {
    await (await browser.$("//button[normalize-space()='Sign out']")).click();
    await (await byText("button", "Sign in to Microsoft Entra")).waitForDisplayed({ timeout: 30000 });
    assert.equal(keychainEntries().length, 0, "signing out leaves nothing in the keychain");
    await control("/_sim/approval", { auto: { upn: "megan@contoso.com", device_polls: 1 } });
    await signInToTheTenant();
    await clickThrough("Next: Choose service", "Choose the service");
    await chooseService("Pomerium", "#input-authenticate_url");
    await (await browser.$("#input-authenticate_url")).setValue("https://authenticate.realpath.example");
    await (await byText("button", "Continue")).click();
    // Register app has nothing to decide; Permissions & consent says a colleague must consent.
    await browser.waitUntil(async () => (await (await byText("h2", "A colleague must consent")).isExisting()) || (await (await byText("h1", "Register the app")).isExisting()), { timeout: 60000 });
    if (await (await byText("h1", "Register the app")).isExisting()) await (await browser.$("//button[starts-with(normalize-space(), 'Next: ')]")).click();
    await (await byText("h2", "A colleague must consent")).waitForDisplayed({ timeout: 60000 });
    await nextUntilReview();
    await (await browser.$("//button[starts-with(normalize-space(), 'Apply ')]")).click();
    await (await byText("h1", "Done")).waitForDisplayed({ timeout: 120000 });
    const link = await (await browser.$("section.consent code")).getText();
    assert.ok(link.startsWith(`${sim.url}/`) && link.includes("/adminconsent?"), link);
    // Adele, a Global Administrator, opens the link in her own browser and accepts.
    await control("/_sim/consent-approver", { upn: "adele@contoso.com" });
    const opened = await fetch(link, { redirect: "manual" });
    assert.ok([302, 303].includes(opened.status), `the consent was given and the colleague sent on to the service: ${opened.status}`);
    assert.match(opened.headers.get("location") ?? "", /admin_consent=True/);
    await (await byText("button", "Check again")).click();
    await browser.waitUntil(async () => !(await (await browser.$("section.consent")).isExisting()), {
      timeout: 120000,
      timeoutMsg: "the wizard never saw the colleague's consent",
    });
    await (await browser.$("[data-testid='done-summary']")).waitForDisplayed({ timeout: 120000 });
    await browser.saveScreenshot(join(out, "42-real-colleague-consented.png"));
  });
  console.log("Real-tenant path: separate simulator, system browser, OS keychain, provider API base and a colleague's consent link all worked");
} catch (e) {
  if (browser) await browser.saveScreenshot(join(out, "real-failure.png")).catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.deleteSession().catch(() => {});
  stopDriver();
  sim.child.kill();
  rmSync(scratch, { recursive: true, force: true });
}
