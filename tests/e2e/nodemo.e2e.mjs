// The desktop app built without the demo tenant (`--no-default-features`), launched in a real
// window under Xvfb: it reaches the welcome screen, offers only the real sign-in (no demo
// tenant), opens the sign-in form, and passes axe-core. Lints alone cannot show that this build
// starts at all.
//
//   node tests/e2e/nodemo.e2e.mjs <the no-demo binary>   (run by scripts/test.sh)
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { axeCheck } from "./axe.mjs";
import { appEnv, painted, withApp } from "./support.mjs";

const app = process.argv[2];
assert.ok(app, "usage: nodemo.e2e.mjs <binary built with --no-default-features>");
const root = resolve(import.meta.dirname, "../..");
const out = process.env.E2E_OUT ?? join(root, "target", "e2e");
mkdirSync(out, { recursive: true });

await withApp(app, appEnv("entra-setup-nodemo-"), async (browser) => {
  const signIn = await browser.$("//button[normalize-space()='Sign in to Microsoft Entra']");
  await signIn.waitForDisplayed({ timeout: 60000 });
  // The shell itself has no demo users to offer; once the page has the same answer, no demo card.
  const info = await browser.executeAsync((done) => {
    window.__TAURI_INTERNALS__.invoke("app_info").then(done, (e) => done({ error: String(e) }));
  });
  assert.deepEqual(info.demoUsers, [], `app_info without the demo tenant: ${JSON.stringify(info)}`);
  await browser.pause(300);
  assert.equal(await (await browser.$("//button[normalize-space()='Try the demo tenant']")).isExisting(), false, "a build without the demo tenant offers none");
  await painted(browser);
  await browser.saveScreenshot(join(out, "00-nodemo-welcome.png"));
  await axeCheck(browser, "the no-demo build's welcome screen");
  await signIn.click();
  const tenant = await browser.$("#tenant");
  await tenant.waitForDisplayed({ timeout: 10000 });
  await painted(browser);
  await browser.saveScreenshot(join(out, "00-nodemo-signin.png"));
  await axeCheck(browser, "the no-demo build's sign-in form");
  console.log("No-demo build: launched, welcome screen without the demo tenant, sign-in form reached");
});
