// The installed program (from the .deb, under /usr/bin), started as an admin would start it,
// in a real window under Xvfb: it reaches the welcome screen, passes axe-core, and the same
// screen is photographed in the dark theme.
//
//   node tests/e2e/installed.e2e.mjs /usr/bin/entra-setup-desktop   (run by scripts/test-installer.sh)
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";
import { axeCheck } from "./axe.mjs";
import { appEnv, painted, publish, withApp } from "./support.mjs";

const app = process.argv[2];
assert.ok(app, "usage: installed.e2e.mjs <installed binary>");
const root = resolve(import.meta.dirname, "../..");
const out = process.env.E2E_OUT ?? join(root, "target", "e2e");
mkdirSync(out, { recursive: true });

/** One launch of the installed app: waits for the welcome screen, then `fn(browser)`. */
function launch(extraEnv, fn) {
  return withApp(app, appEnv("entra-setup-installed-", extraEnv), async (browser) => {
    const demo = await browser.$("//button[normalize-space()='Try the demo tenant']");
    await demo.waitForDisplayed({ timeout: 60000 });
    await fn(browser);
  });
}

await launch({}, async (browser) => {
  const version = await browser.execute(() => document.title);
  assert.equal(version, "Entra Setup");
  await browser.pause(300);
  await painted(browser);
  await browser.saveScreenshot(join(out, "00-installed-welcome.png"));
  await axeCheck(browser, "the installed app's welcome screen");
  console.log("  the installed program reached the welcome screen (00-installed-welcome.png)");
});

// GTK's dark variant is what WebKitGTK reports as prefers-color-scheme: dark.
await launch({ GTK_THEME: "Adwaita:dark" }, async (browser) => {
  const dark = await browser.execute(() => matchMedia("(prefers-color-scheme: dark)").matches);
  await browser.pause(300);
  await painted(browser);
  const file = join(out, "00-installed-welcome-dark.png");
  await browser.saveScreenshot(file);
  publish("00-installed-welcome-dark", file);
  await axeCheck(browser, "the welcome screen in the dark theme");
  console.log(`  dark theme: prefers-color-scheme dark = ${dark} (00-installed-welcome-dark.png)`);
  assert.ok(dark, "the dark GTK theme reaches the page as prefers-color-scheme: dark");
});
console.log("Installed app: launched, welcome screen reached, accessible in both themes");
